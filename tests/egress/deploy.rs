//! The systemd unit of an egress host: `systemd-analyze verify` accepts it
//! (with the path of the binary just built), and its hardening keeps the
//! exposure `systemd-analyze security` reports at 2.0 or lower.

use std::process::Command;

const UNIT: &str = include_str!("../../deploy/systemd/mfagate-egress.service");

#[test]
fn the_egress_unit_verifies_and_is_hardened() {
    for setting in
        ["NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n", "RestartPreventExitStatus=78"]
    {
        assert!(UNIT.contains(setting), "{setting:?} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("mfagate-egress.service");
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/mfagate", env!("CARGO_BIN_EXE_mfagate"))).unwrap();
    let verify = Command::new(crate::support::setup::program("systemd-analyze"))
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && stderr.trim().is_empty(), "{stderr}");

    let security = Command::new(crate::support::setup::program("systemd-analyze"))
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(security.status.success(), "exposure above 2.0:\n{report}");
    assert!(report.contains("Overall exposure level"), "{report}");
}
