//! Inter-vCPU interrupts: a guest's write of ICC_SGI1R_EL1 (GICv3, Arm IHI
//! 0069) or of GICD_SGIR (GICv2, Arm IHI 0048B), decoded and routed by one
//! policy to the vCPUs of the sender's partition, targets outside it
//! refused and counted.

use crate::partition::MAX_VCPUS;
use crate::vgic::state::AFFINITY;

/// The fields of an ICC_SGI1R_EL1 value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SgiRequest {
    /// INTID, 0..16.
    pub intid: u32,
    pub target: SgiTarget,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgiTarget {
    /// IRM = 1 (GICv3), TargetListFilter 0b01 (GICv2): every vCPU of the
    /// partition but the sender.
    AllButSelf,
    /// GICv2's TargetListFilter 0b10: the sender only.
    SelfOnly,
    /// GICv2's TargetListFilter 0b00: bit n of CPUTargetList names CPU
    /// interface n, vCPU n of the partition (its virtual distributor
    /// numbers them so). TargetListFilter 0b11, reserved, names nobody.
    Interfaces(u8),
    /// IRM = 0: the CPUs Aff3.Aff2.Aff1.<rs * 16 + n> for each bit n of `list`.
    List {
        aff3: u8,
        aff2: u8,
        aff1: u8,
        /// RS, the range selector: which block of 16 Aff0 values `list` covers.
        rs: u8,
        list: u16,
    },
}

/// The fields of ICC_SGI1R_EL1 (Arm IHI 0069): masks in place, and the
/// shifts of those decoded. The assembly fast path takes its masks from here.
pub mod field {
    /// TargetList, bits 15:0: one bit per Aff0 value in the RS block.
    pub const TARGET_LIST: u64 = 0xffff;
    /// Aff1, bits 23:16.
    pub const AFF1: u64 = 0xff << AFF1_SHIFT;
    pub const AFF1_SHIFT: u32 = 16;
    /// INTID, bits 27:24.
    pub const INTID: u64 = 0xf << INTID_SHIFT;
    pub const INTID_SHIFT: u32 = 24;
    /// Aff2, bits 39:32.
    pub const AFF2: u64 = 0xff << AFF2_SHIFT;
    pub const AFF2_SHIFT: u32 = 32;
    /// IRM, bit 40: every PE but the sender.
    pub const IRM: u64 = 1 << 40;
    /// RS, bits 47:44: which block of 16 Aff0 values TargetList covers.
    pub const RS: u64 = 0xf << RS_SHIFT;
    pub const RS_SHIFT: u32 = 44;
    /// Aff3, bits 55:48.
    pub const AFF3: u64 = 0xff << AFF3_SHIFT;
    pub const AFF3_SHIFT: u32 = 48;
}

/// The fields of GICD_SGIR (Arm IHI 0048B, 4.3.15), masks in place.
pub mod sgir {
    /// SGIINTID, bits 3:0.
    pub const INTID: u32 = 0xf;
    /// NSATT, bit 15: which group a Secure write raises. A partition's
    /// GIC has no Security Extensions, so the bit is ignored: every SGI of
    /// a partition is in the one group its interrupts have.
    pub const NSATT: u32 = 1 << 15;
    /// CPUTargetList, bits 23:16.
    pub const TARGET_LIST_SHIFT: u32 = 16;
    /// TargetListFilter, bits 25:24.
    pub const FILTER_SHIFT: u32 = 24;
}

impl SgiRequest {
    /// Decodes a GICD_SGIR write; reserved bits and NSATT are ignored.
    pub const fn decode_sgir(value: u32) -> SgiRequest {
        let intid = value & sgir::INTID;
        let list = (value >> sgir::TARGET_LIST_SHIFT) as u8;
        let target = match (value >> sgir::FILTER_SHIFT) & 3 {
            0 => SgiTarget::Interfaces(list),
            1 => SgiTarget::AllButSelf,
            2 => SgiTarget::SelfOnly,
            _ => SgiTarget::Interfaces(0),
        };
        SgiRequest { intid, target }
    }

    /// Decodes every field; bits the architecture reserves are ignored.
    #[inline(always)]
    pub const fn decode(value: u64) -> SgiRequest {
        use field::*;
        let intid = ((value & INTID) >> INTID_SHIFT) as u32;
        let target = if value & IRM != 0 {
            SgiTarget::AllButSelf
        } else {
            SgiTarget::List {
                aff3: ((value & AFF3) >> AFF3_SHIFT) as u8,
                aff2: ((value & AFF2) >> AFF2_SHIFT) as u8,
                aff1: ((value & AFF1) >> AFF1_SHIFT) as u8,
                rs: ((value & RS) >> RS_SHIFT) as u8,
                list: (value & TARGET_LIST) as u16,
            }
        };
        SgiRequest { intid, target }
    }
}

/// Where an SGI goes within the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Routing {
    /// Bit n: vCPU n is a target (the sender included, for a self-IPI).
    pub vcpus: u32,
    /// Targets named that are not vCPUs of the partition: refused.
    pub refused: u32,
}

/// A partition's virtual affinities, arranged for routing.
#[derive(Clone, Copy, Debug)]
pub struct AffinityMap {
    count: usize,
    /// vCPU n has affinity 0.0.0.n for every n: the common case, routed
    /// without a search.
    identity: bool,
    vmpidrs: [u64; MAX_VCPUS],
}

impl AffinityMap {
    /// `vmpidrs[n]` is vCPU n's virtual MPIDR (Aff3 in bits 39:32, Aff2..Aff0
    /// in 23:0); at most [`MAX_VCPUS`] are used.
    pub fn new(vmpidrs: &[u64]) -> AffinityMap {
        let count = vmpidrs.len().min(MAX_VCPUS);
        let mut map = AffinityMap {
            count,
            identity: true,
            vmpidrs: [0; MAX_VCPUS],
        };
        for (n, &m) in vmpidrs[..count].iter().enumerate() {
            map.vmpidrs[n] = m & AFFINITY;
            map.identity &= m & AFFINITY == n as u64;
        }
        map
    }

    fn all(&self) -> u32 {
        (1u32 << self.count) - 1
    }

    /// Routes `req` sent by vCPU `sender`.
    #[inline(always)]
    pub fn route(&self, req: &SgiRequest, sender: usize) -> Routing {
        match req.target {
            SgiTarget::AllButSelf => Routing {
                vcpus: self.all() & !(1 << sender),
                refused: 0,
            },
            SgiTarget::SelfOnly => Routing {
                vcpus: 1 << sender,
                refused: 0,
            },
            SgiTarget::Interfaces(list) => {
                let list = u32::from(list);
                Routing {
                    vcpus: list & self.all(),
                    refused: (list & !self.all()).count_ones(),
                }
            }
            SgiTarget::List {
                aff3: 0,
                aff2: 0,
                aff1: 0,
                rs: 0,
                list,
            } if self.identity => {
                let list = u32::from(list);
                Routing {
                    vcpus: list & self.all(),
                    refused: (list & !self.all()).count_ones(),
                }
            }
            SgiTarget::List {
                aff3,
                aff2,
                aff1,
                rs,
                list,
            } => {
                let mut routing = Routing::default();
                let base =
                    (u64::from(aff3) << 32) | (u64::from(aff2) << 16) | (u64::from(aff1) << 8);
                let mut bits = list;
                while bits != 0 {
                    let n = bits.trailing_zeros() as u64;
                    bits &= bits - 1;
                    let affinity = base | (u64::from(rs) * 16 + n);
                    match self.vmpidrs[..self.count]
                        .iter()
                        .position(|&m| m == affinity)
                    {
                        Some(v) => routing.vcpus |= 1 << v,
                        None => routing.refused += 1,
                    }
                }
                routing
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// GICD_SGIR: every filter, the target list, INTID, and NSATT and the
    /// reserved bits ignored; CPU interfaces the partition does not have
    /// are refused and counted, as GICv3 targets outside it are.
    #[test]
    fn a_gicd_sgir_write_is_decoded_and_routed_by_the_same_policy() {
        let map = AffinityMap::new(&[0, 1, 2]);
        let route = |req: &SgiRequest, sender| {
            let r = map.route(req, sender);
            (r.vcpus, r.refused)
        };
        // Every reserved bit set, and NSATT; TargetListFilter (25:24) 0b00.
        let req = SgiRequest::decode_sgir(0x00a5_0007 | sgir::NSATT | 0xfc00_7ff0);
        assert_eq!((req.intid, req.target), (7, SgiTarget::Interfaces(0xa5)));
        // Interfaces 0 and 2 are vCPUs; 5 and 7 are not.
        assert_eq!(route(&req, 0), (0b101, 2));
        // The other filters: all but the sender, the sender, nobody.
        for (f, target, sender, routed) in [
            (1, SgiTarget::AllButSelf, 1, 0b101),
            (2, SgiTarget::SelfOnly, 2, 0b100),
            (3, SgiTarget::Interfaces(0), 0, 0),
        ] {
            let req = SgiRequest::decode_sgir(f << 24 | 0xff_0003);
            assert_eq!((req.intid, req.target), (3, target));
            assert_eq!(route(&req, sender), (routed, 0));
        }
    }

    /// The reference: ICC_SGI1R_EL1's fields straight from the register
    /// diagram, one bit range at a time.
    fn field(value: u64, hi: u32, lo: u32) -> u64 {
        (value >> lo) & ((1u64 << (hi - lo + 1)) - 1)
    }

    /// The reference routing: every target the value names, checked one by
    /// one against every vCPU.
    fn reference(value: u64, sender: usize, vmpidrs: &[u64]) -> (Vec<usize>, u32) {
        if field(value, 40, 40) == 1 {
            return ((0..vmpidrs.len()).filter(|&v| v != sender).collect(), 0);
        }
        let mut hit = Vec::new();
        let mut refused = 0;
        for bit in 0..16 {
            if field(value, bit, bit) == 0 {
                continue;
            }
            let aff0 = field(value, 47, 44) * 16 + u64::from(bit);
            let want = (field(value, 55, 48) << 32)
                | (field(value, 39, 32) << 16)
                | (field(value, 23, 16) << 8)
                | aff0;
            match vmpidrs.iter().position(|&m| m & AFFINITY == want) {
                Some(v) => hit.push(v),
                None => refused += 1,
            }
        }
        hit.sort_unstable();
        hit.dedup();
        (hit, refused)
    }

    fn mask_to_vec(mask: u32) -> Vec<usize> {
        (0..32).filter(|n| mask & (1 << n) != 0).collect()
    }

    proptest! {
        #[test]
        fn every_field_decodes_as_the_register_diagram_says(value: u64) {
            let req = SgiRequest::decode(value);
            prop_assert_eq!(u64::from(req.intid), field(value, 27, 24));
            match req.target {
                SgiTarget::AllButSelf => prop_assert_eq!(field(value, 40, 40), 1),
                SgiTarget::SelfOnly | SgiTarget::Interfaces(_) => {
                    prop_assert!(false, "only GICD_SGIR names targets so: {:?}", req);
                }
                SgiTarget::List { aff3, aff2, aff1, rs, list } => {
                    prop_assert_eq!(field(value, 40, 40), 0);
                    prop_assert_eq!(u64::from(aff3), field(value, 55, 48));
                    prop_assert_eq!(u64::from(aff2), field(value, 39, 32));
                    prop_assert_eq!(u64::from(aff1), field(value, 23, 16));
                    prop_assert_eq!(u64::from(rs), field(value, 47, 44));
                    prop_assert_eq!(u64::from(list), field(value, 15, 0));
                }
            }
        }

        /// GICD_SGIR against its register diagram: SGIINTID 3:0,
        /// CPUTargetList 23:16, TargetListFilter 25:24; every CPU interface
        /// named is a vCPU of the partition or refused.
        #[test]
        fn gicd_sgir_routes_as_its_register_diagram_says(
            value: u32, count in 1usize..=8, sender in 0usize..8,
        ) {
            let sender = sender % count;
            let v = u64::from(value);
            let req = SgiRequest::decode_sgir(value);
            prop_assert_eq!(u64::from(req.intid), field(v, 3, 0));
            let vmpidrs: Vec<u64> = (0..count as u64).collect();
            let routing = AffinityMap::new(&vmpidrs).route(&req, sender);
            let all = (1u32 << count) - 1;
            let list = field(v, 23, 16) as u32;
            let (vcpus, refused) = match field(v, 25, 24) {
                0 => (list & all, (list & !all).count_ones()),
                1 => (all & !(1 << sender), 0),
                2 => (1 << sender, 0),
                _ => (0, 0),
            };
            prop_assert_eq!(routing, Routing { vcpus, refused });
        }

        #[test]
        fn routing_matches_the_reference_for_identity_partitions(
            value: u64, count in 1usize..=8, sender in 0usize..8,
        ) {
            let sender = sender % count;
            let vmpidrs: Vec<u64> = (0..count as u64).collect();
            let routing = AffinityMap::new(&vmpidrs).route(&SgiRequest::decode(value), sender);
            let (hit, refused) = reference(value, sender, &vmpidrs);
            prop_assert_eq!(mask_to_vec(routing.vcpus), hit);
            prop_assert_eq!(routing.refused, refused);
        }

        #[test]
        fn routing_matches_the_reference_for_any_affinities(
            (irm, aff2, aff1, rs, list, intid) in (any::<bool>(), 0u64..2, 0u64..2, 0u64..3, any::<u16>(), 0u64..16),
            affs in proptest::collection::btree_set((0u64..2, 0u64..2, 0u64..40), 1..=8),
            sender in 0usize..8,
        ) {
            // Small affinity values on both sides, so random requests hit often.
            let vmpidrs: Vec<u64> = affs.iter().map(|&(a2, a1, a0)| (a2 << 16) | (a1 << 8) | a0).collect();
            let value = (u64::from(irm) << 40) | (rs << 44) | (aff2 << 32) | (intid << 24) | (aff1 << 16) | u64::from(list);
            let sender = sender % vmpidrs.len();
            let routing = AffinityMap::new(&vmpidrs).route(&SgiRequest::decode(value), sender);
            let (hit, refused) = reference(value, sender, &vmpidrs);
            prop_assert_eq!(mask_to_vec(routing.vcpus), hit);
            prop_assert_eq!(routing.refused, refused);
        }
    }

    #[test]
    fn broadcast_reaches_all_but_the_sender_and_self_ipi_reaches_the_sender() {
        let map = AffinityMap::new(&[0, 1, 2, 3]);
        let irm = SgiRequest::decode((1 << 40) | (3 << 24));
        assert_eq!(irm.intid, 3);
        assert_eq!(
            map.route(&irm, 2),
            Routing {
                vcpus: 0b1011,
                refused: 0
            }
        );
        let own = SgiRequest::decode(1 << 2);
        assert_eq!(
            map.route(&own, 2),
            Routing {
                vcpus: 0b0100,
                refused: 0
            }
        );
    }

    #[test]
    fn targets_outside_the_partition_are_refused_and_counted() {
        let map = AffinityMap::new(&[0, 1]);
        // TargetList bits 1 and 5: vCPU 1 exists, Aff0 = 5 does not.
        let r = map.route(&SgiRequest::decode(0b10_0010), 0);
        assert_eq!(
            r,
            Routing {
                vcpus: 0b10,
                refused: 1
            }
        );
        // Aff1 = 1: no vCPU of this partition has it.
        let r = map.route(&SgiRequest::decode((1 << 16) | 0b11), 0);
        assert_eq!(
            r,
            Routing {
                vcpus: 0,
                refused: 2
            }
        );
        // RS = 1 covers Aff0 16..31.
        let r = map.route(&SgiRequest::decode((1 << 44) | 1), 0);
        assert_eq!(
            r,
            Routing {
                vcpus: 0,
                refused: 1
            }
        );
    }

    #[test]
    fn non_identity_affinities_route_by_search() {
        // Two clusters: 0.0.1.0 and 0.0.1.1, then 0.1.0.16 via RS = 1.
        let map = AffinityMap::new(&[0x100, 0x101, 0x1_0010]);
        let r = map.route(&SgiRequest::decode((1 << 16) | 0b11), 2);
        assert_eq!(
            r,
            Routing {
                vcpus: 0b011,
                refused: 0
            }
        );
        let r = map.route(&SgiRequest::decode((1 << 32) | (1 << 44) | 1), 0);
        assert_eq!(
            r,
            Routing {
                vcpus: 0b100,
                refused: 0
            }
        );
    }
}
