//! Writes two lines straight to the PL011 registers (under Bulkhead: the
//! emulated PL011), then exits with code 0.
#![no_std]
#![no_main]

guest_lib::entry!(main);

fn main() -> ! {
    guest_lib::raw_pl011_write("raw pl011 line one\n");
    guest_lib::raw_pl011_write("raw pl011 line two\n");
    guest_lib::exit(0)
}
