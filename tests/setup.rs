//! scripts/apt-sources.sh, the part of scripts/setup.sh that reads apt's
//! configuration, run against fixture trees of every apt layout a Debian
//! bookworm machine can have (`BULKHEAD_APT_ROOT` points it at the tree).
//! Each case checks the mirror it finds and exactly what it would add.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The deb822 file a fresh Debian bookworm machine (or container) ships,
/// and nothing else: no sources.list, no backports.
const STOCK_SOURCES: &str = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

const OS_RELEASE: &str = "\
PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"
NAME=\"Debian GNU/Linux\"
VERSION_ID=\"12\"
VERSION=\"12 (bookworm)\"
VERSION_CODENAME=bookworm
ID=debian
";

const DEB822: &str = "etc/apt/sources.list.d/debian.sources";
const ONE_LINE: &str = "etc/apt/sources.list";

/// A fresh tree under the test's temporary directory holding `files`
/// (path relative to the root, content) and bookworm's os-release.
fn tree(case: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("apt-fixtures")
        .join(case);
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("etc/apt/sources.list.d")).unwrap();
    fs::write(root.join("etc/os-release"), OS_RELEASE).unwrap();
    for (path, text) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    root
}

fn apt_sources(root: &Path, mode: &str) -> Output {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/apt-sources.sh"))
        .arg(mode)
        .env("BULKHEAD_APT_ROOT", root)
        .output()
        .expect("scripts/apt-sources.sh runs")
}

/// What the script prints for a tree, checked to have succeeded.
fn plan(case: &str, files: &[(&str, &str)]) -> String {
    let out = apt_sources(&tree(case, files), "plan");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{case}: exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The output when backports must be added from `mirror`.
fn adds(mirror: &str, signed_by: Option<&str>) -> String {
    let signed = signed_by.map_or(String::new(), |s| format!("  Signed-By: {s}\n"));
    format!(
        "codename bookworm\nmirror {mirror}\nbackports missing\n\
         add /etc/apt/sources.list.d/bulkhead-backports.sources\n  Types: deb\n  URIs: {mirror}\n  \
         Suites: bookworm-backports\n  Components: main\n{signed}"
    )
}

/// A fixture tree: its case name, its files, and the file (or text) the
/// script must name.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

#[test]
fn deb822_sources_only_the_fresh_machine_layout() {
    assert_eq!(
        plan("deb822-only", &[(DEB822, STOCK_SOURCES)]),
        adds("http://deb.debian.org/debian", Some(KEYRING))
    );
}

#[test]
fn one_line_sources_list_only_with_security_listed_first() {
    let list = "\
# deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD]/ bookworm main
deb http://security.debian.org/debian-security bookworm-security main contrib
deb-src http://ftp.fr.debian.org/debian bookworm main
deb http://ftp.fr.debian.org/debian bookworm main contrib non-free-firmware
deb http://ftp.fr.debian.org/debian bookworm-updates main
";
    assert_eq!(
        plan("one-line-only", &[(ONE_LINE, list)]),
        adds("http://ftp.fr.debian.org/debian", None)
    );
}

#[test]
fn both_forms_sources_list_is_read_first_and_its_trailing_slash_cut() {
    let list = "deb http://ftp.de.debian.org/debian/ bookworm main\n";
    assert_eq!(
        plan("both", &[(ONE_LINE, list), (DEB822, STOCK_SOURCES)]),
        adds("http://ftp.de.debian.org/debian", None)
    );
}

#[test]
fn mirrors_with_and_without_a_trailing_slash_give_the_same_mirror() {
    for (case, uri) in [
        ("slash", "https://mirror.example.org/debian/"),
        ("slashes", "https://mirror.example.org/debian//"),
        ("no-slash", "https://mirror.example.org/debian"),
    ] {
        let sources = format!("Types: deb\nURIs: {uri}\nSuites: bookworm\nComponents: main\n");
        assert_eq!(
            plan(case, &[(DEB822, &sources)]),
            adds("https://mirror.example.org/debian", None),
            "{case}"
        );
    }
}

#[test]
fn the_security_suite_beside_the_main_one_is_never_taken_for_the_mirror() {
    // Security first in the same file, and a stanza listing several URIs.
    let sources = "\
Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb deb-src
URIs: http://ftp.nl.debian.org/debian
  http://ftp.be.debian.org/debian
Suites: bookworm-updates bookworm
Components: main
";
    assert_eq!(
        plan("security-beside", &[(DEB822, sources)]),
        adds("http://ftp.nl.debian.org/debian", None)
    );
}

#[test]
fn backports_already_configured_adds_nothing() {
    let backports = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\n";
    let cases: [Case; 4] = [
        (
            "backports-deb822-file",
            vec![
                (DEB822, STOCK_SOURCES),
                ("etc/apt/sources.list.d/backports.sources", backports),
            ],
            "/etc/apt/sources.list.d/backports.sources",
        ),
        (
            "backports-one-line",
            vec![(
                ONE_LINE,
                "deb http://deb.debian.org/debian bookworm main\n\
                 deb http://deb.debian.org/debian bookworm-backports main\n",
            )],
            "/etc/apt/sources.list",
        ),
        (
            "backports-same-stanza",
            vec![(
                DEB822,
                "Types: deb\nURIs: http://deb.debian.org/debian\n\
                 Suites: bookworm bookworm-updates bookworm-backports\nComponents: main\n",
            )],
            "/etc/apt/sources.list.d/debian.sources",
        ),
        (
            // What the first scripts/setup.sh wrote.
            "backports-earlier-setup",
            vec![
                (DEB822, STOCK_SOURCES),
                (
                    "etc/apt/sources.list.d/bulkhead-backports.list",
                    "deb http://deb.debian.org/debian bookworm-backports main\n",
                ),
            ],
            "/etc/apt/sources.list.d/bulkhead-backports.list",
        ),
    ];
    for (case, files, file) in cases {
        let out = plan(case, &files);
        assert!(
            out.ends_with(&format!("backports configured {file}\n")),
            "{case}: {out}"
        );
        assert!(!out.contains("\nadd "), "{case}: {out}");
        // `add` writes nothing either.
        let root = tree(case, &files);
        assert!(apt_sources(&root, "add").status.success(), "{case}");
        assert!(
            !root
                .join("etc/apt/sources.list.d/bulkhead-backports.sources")
                .exists(),
            "{case}"
        );
    }
}

#[test]
fn commented_or_disabled_backports_do_not_count() {
    let list = "deb http://deb.debian.org/debian bookworm main\n\
                # deb http://deb.debian.org/debian bookworm-backports main\n\
                deb-src http://deb.debian.org/debian bookworm-backports main\n";
    let disabled = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n\
                    Components: main\nEnabled: no\n";
    assert_eq!(
        plan(
            "backports-disabled",
            &[
                (ONE_LINE, list),
                ("etc/apt/sources.list.d/backports.sources", disabled)
            ]
        ),
        adds("http://deb.debian.org/debian", None)
    );
}

#[test]
fn one_line_options_are_skipped_and_signed_by_is_carried() {
    for (case, line) in [
        (
            "options-attached",
            "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] https://deb.debian.org/debian bookworm main",
        ),
        (
            "options-spaced",
            "deb [ arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ] https://deb.debian.org/debian bookworm main",
        ),
    ] {
        assert_eq!(
            plan(case, &[(ONE_LINE, &format!("{line}\n"))]),
            adds("https://deb.debian.org/debian", Some(KEYRING)),
            "{case}"
        );
    }
}

#[test]
fn an_inline_signing_key_is_not_copied() {
    let sources = "\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw/NZJPR8lsD3K87ZM18gzyQZJD+w
 -----END PGP PUBLIC KEY BLOCK-----
";
    assert_eq!(
        plan("inline-key", &[(DEB822, sources)]),
        adds("http://deb.debian.org/debian", None)
    );
}

#[test]
fn mirror_plus_uris_are_network_mirrors() {
    let sources = "Types: deb\nURIs: mirror+http://mirrors.example.org/mirrors.txt\nSuites: bookworm\nComponents: main\n";
    assert_eq!(
        plan("mirror-plus", &[(DEB822, sources)]),
        adds("mirror+http://mirrors.example.org/mirrors.txt", None)
    );
}

/// No network mirror: the script fails (exit 3) and says what it read,
/// what it looked for, and what to install by hand.
#[test]
fn no_network_mirror_names_what_to_install_by_hand() {
    let cases: [Case; 3] = [
        (
            "local-only",
            vec![(
                ONE_LINE,
                "deb file:/srv/debian bookworm main\n\
                 deb [trusted=yes] cdrom:[Debian GNU/Linux 12]/ bookworm main\n",
            )],
            "/etc/apt/sources.list",
        ),
        ("no-sources", vec![], "read: none"),
        (
            // Sources only for the security suite and the main one as deb-src.
            "only-security-and-src",
            vec![(
                DEB822,
                "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\
                 Components: main\n\nTypes: deb-src\nURIs: http://deb.debian.org/debian\n\
                 Suites: bookworm\nComponents: main\n",
            )],
            "/etc/apt/sources.list.d/debian.sources",
        ),
    ];
    for (case, files, read) in cases {
        let root = tree(case, &files);
        let out = apt_sources(&root, "add");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{case}: {stderr}");
        for needle in [
            read,
            "no network Debian mirror",
            "qemu-system-arm 10 or later",
            "gcc-aarch64-linux-gnu",
            "URIs: http://deb.debian.org/debian",
        ] {
            assert!(
                stderr.contains(needle),
                "{case}: no {needle:?} in:\n{stderr}"
            );
        }
        assert!(
            fs::read_dir(root.join("etc/apt/sources.list.d"))
                .unwrap()
                .all(|e| !e
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("bulkhead")),
            "{case}: wrote a source without a mirror"
        );
    }
}

/// `add` writes the stanza it announced, in deb822 form, and a second run
/// finds backports configured (setup.sh is safe to run again).
#[test]
fn add_writes_the_backports_source_once() {
    let root = tree("add", &[(DEB822, STOCK_SOURCES)]);
    let first = apt_sources(&root, "add");
    assert!(first.status.success());
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        adds("http://deb.debian.org/debian", Some(KEYRING))
    );
    let written =
        fs::read_to_string(root.join("etc/apt/sources.list.d/bulkhead-backports.sources")).unwrap();
    assert_eq!(
        written,
        "# Added by Bulkhead's scripts/setup.sh: QEMU 10 comes from bookworm-backports.\n\
         Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n\
         Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    );
    let second = apt_sources(&root, "add");
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        "codename bookworm\nmirror http://deb.debian.org/debian\n\
         backports configured /etc/apt/sources.list.d/bulkhead-backports.sources\n"
    );
}

#[test]
fn a_tree_without_a_release_name_is_a_clear_error() {
    let root = tree("no-codename", &[(DEB822, STOCK_SOURCES)]);
    fs::write(root.join("etc/os-release"), "NAME=\"Something\"\n").unwrap();
    let out = apt_sources(&root, "plan");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no VERSION_CODENAME"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
