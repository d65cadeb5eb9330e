//! Landlock building blocks shared by corral's two process jails: the compile jail
//! (`compile::jail`) and the worker lock-down (`worker::lockdown`). A leaf module, so that
//! both can use it without an import cycle.

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, Ruleset, RulesetAttr,
    Scope,
};

/// Write access below a granted directory without what a hostile process could abuse
/// there: no device nodes (a root-owned block device would expose the disk), no sockets or
/// FIFOs, no device ioctls, and no executing what was written. Used by the compile jail for
/// its work dir and by the worker lock-down for its root.
pub(crate) fn writable_without_exec(abi: ABI) -> BitFlags<AccessFs> {
    let mut access = AccessFs::from_all(abi);
    for a in [
        AccessFs::Execute,
        AccessFs::MakeChar,
        AccessFs::MakeBlock,
        AccessFs::MakeSock,
        AccessFs::MakeFifo,
        AccessFs::IoctlDev,
    ] {
        access.remove(a);
    }
    access
}

/// A Landlock ruleset that handles every filesystem and network right and every scope of
/// `abi` (best effort: what the kernel lacks is dropped), so that only the rules added to it
/// are allowed.
///
/// # Errors
///
/// The ruleset cannot be built or created.
pub(crate) fn deny_all_ruleset(
    abi: ABI,
) -> Result<landlock::RulesetCreated, landlock::RulesetError> {
    Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()
}
