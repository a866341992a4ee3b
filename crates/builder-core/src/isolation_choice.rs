//! Which RUN isolation a build gets: the one asked for, or for `auto` the best the host
//! allows, decided from probed host facts (so the rule is one table, tested as one).

use crate::Isolation;

/// The isolation asked for (`--isolation`, `STRATA_ISOLATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationRequest {
    /// The best the host allows.
    Auto,
    /// Exactly this one.
    Exactly(Isolation),
}

/// What the host allows, as [`HostFacts::probe`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostFacts {
    /// Real root: euid 0 outside strata's own user namespace.
    pub root: bool,
    /// Already inside a user namespace (strata's rootless re-exec, or a rootless container).
    pub in_user_namespace: bool,
    /// This process may create mount and PID namespaces (CAP_SYS_ADMIN, no seccomp refusal).
    pub can_create_namespaces: bool,
    /// Inside a container or a Kubernetes pod.
    pub in_container: bool,
}

impl HostFacts {
    /// Probes this process and host (the namespace probe forks a child that unshares).
    pub fn probe() -> Self {
        let in_user_namespace = crate::exec::in_user_namespace();
        let root = nix::unistd::geteuid().is_root() && !in_user_namespace;
        Self { root, in_user_namespace, can_create_namespaces: root && crate::exec::can_create_namespaces(), in_container: crate::exec::running_in_container() }
    }
}

/// Why the isolation asked for cannot be had here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsolationError {
    /// Root, but mount and PID namespaces are refused, and no container to build in.
    #[error(
        "--isolation chroot: this process may not create mount and PID namespaces (root without CAP_SYS_ADMIN, \
         or a seccomp profile that forbids unshare). Give the build that capability, run strata as a non-root \
         user (rootless), or run it inside a throwaway container with --isolation none"
    )]
    NoNamespaces,
    /// `chroot` asked for by a user who is not root.
    #[error("--isolation chroot needs root: run as uid 0 (in Kubernetes, runAsUser: 0) or use --isolation rootless")]
    ChrootNeedsRoot,
}

/// The isolation a build gets for `request` on a host with `facts`.
pub fn choose_isolation(request: IsolationRequest, facts: &HostFacts) -> Result<Isolation, IsolationError> {
    use IsolationRequest::{Auto, Exactly};
    let HostFacts { root, in_user_namespace, can_create_namespaces, in_container } = *facts;
    Ok(match request {
        Auto if root && can_create_namespaces => Isolation::Chroot,
        // A kaniko-style pod: root, but no CAP_SYS_ADMIN. Build in its / as kaniko does.
        Auto if root && in_container => Isolation::None,
        Auto | Exactly(Isolation::Chroot) if root && !can_create_namespaces => return Err(IsolationError::NoNamespaces),
        Auto => Isolation::Rootless,
        // In strata's own user namespace, "chroot" is what rootless gives.
        Exactly(Isolation::Chroot) if in_user_namespace => Isolation::Rootless,
        Exactly(Isolation::Chroot) if !root => return Err(IsolationError::ChrootNeedsRoot),
        Exactly(i) => i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Isolation::{Chroot, None as InPlace, Rootless};
    use IsolationRequest::{Auto, Exactly};

    fn facts(root: bool, userns: bool, ns: bool, container: bool) -> HostFacts {
        HostFacts { root, in_user_namespace: userns, can_create_namespaces: ns, in_container: container }
    }

    /// Every request on every kind of host strata meets.
    #[test]
    fn the_table() {
        let root_host = facts(true, false, true, false);
        let kaniko_pod = facts(true, false, false, true);
        let locked_root = facts(true, false, false, false);
        let user = facts(false, false, false, false);
        let in_userns = facts(false, true, false, true);
        let cases: &[(IsolationRequest, HostFacts, Result<Isolation, IsolationError>)] = &[
            (Auto, root_host, Ok(Chroot)),
            (Auto, facts(true, false, true, true), Ok(Chroot)),
            (Auto, kaniko_pod, Ok(InPlace)),
            (Auto, locked_root, Err(IsolationError::NoNamespaces)),
            (Auto, user, Ok(Rootless)),
            (Auto, in_userns, Ok(Rootless)),
            (Exactly(Chroot), root_host, Ok(Chroot)),
            (Exactly(Chroot), kaniko_pod, Err(IsolationError::NoNamespaces)),
            (Exactly(Chroot), user, Err(IsolationError::ChrootNeedsRoot)),
            (Exactly(Chroot), in_userns, Ok(Rootless)),
            (Exactly(Rootless), root_host, Ok(Rootless)),
            (Exactly(Rootless), user, Ok(Rootless)),
            (Exactly(InPlace), kaniko_pod, Ok(InPlace)),
            (Exactly(InPlace), user, Ok(InPlace)),
        ];
        for (request, host, want) in cases {
            assert_eq!(&choose_isolation(*request, host), want, "{request:?} on {host:?}");
        }
    }
}
