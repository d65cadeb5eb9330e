//! A test-only seccomp filter that makes `openat2` fail with `ENOSYS`.
//!
//! The 2026 trailing-slash sandbox escape lived in cap-std's fallback path resolver, which
//! only runs where `openat2` is unavailable, so the filesystem fixtures run a second time
//! with this filter installed (in a child process: a filter cannot be removed).
#![expect(
    unsafe_code,
    reason = "installing a seccomp filter needs prctl/seccomp syscalls"
)]

/// When set, the test binary installs the filter before running anything.
pub const NO_OPENAT2_ENV: &str = "CORRAL_TEST_NO_OPENAT2";

const SYS_OPENAT2: u32 = 437;
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Installs the filter in this process, then checks that `openat2` now fails with ENOSYS.
///
/// # Panics
///
/// If the filter cannot be installed or does not take effect (the test must not pass
/// silently on the wrong resolver).
pub fn deny_openat2() {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let mut filter = [
        stmt(LD_W_ABS, 4), // seccomp_data.arch
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, SECCOMP_RET_ALLOW),
        stmt(LD_W_ABS, 0), // seccomp_data.nr
        jump(JEQ_K, SYS_OPENAT2, 0, 1),
        stmt(RET_K, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        stmt(RET_K, SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: plain prctl/seccomp syscalls with a valid, live filter program.
    unsafe {
        assert_eq!(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            0,
            "PR_SET_NO_NEW_PRIVS"
        );
        let rc = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        );
        assert_eq!(
            rc,
            0,
            "seccomp(SET_MODE_FILTER) failed: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: openat2 with null arguments only exercises the filter; it must not reach the
    // kernel's implementation.
    let rc = unsafe {
        libc::syscall(
            SYS_OPENAT2 as libc::c_long,
            -100,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            0,
        )
    };
    let err = std::io::Error::last_os_error().raw_os_error();
    assert!(
        rc == -1 && err == Some(libc::ENOSYS),
        "openat2 is still available after the filter"
    );
}
