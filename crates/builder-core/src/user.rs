//! Resolving `USER name[:group]` against the image's /etc/passwd and /etc/group.

use crate::rootfs::resolve_in_root;
use std::path::Path;

/// A user as a RUN sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the /etc/group entries listing the user (not its primary gid).
    pub groups: Vec<u32>,
    /// Home directory from /etc/passwd (`/` when unknown).
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn read_image_file(rootfs: &Path, path: &str) -> String {
    resolve_in_root(rootfs, path).and_then(std::fs::read_to_string).unwrap_or_default()
}

fn passwd(rootfs: &Path) -> Vec<PasswdEntry> {
    read_image_file(rootfs, "/etc/passwd")
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry { name: f[0].into(), uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home: f[5].into() })
        })
        .collect()
}

fn groups(rootfs: &Path) -> Vec<GroupEntry> {
    read_image_file(rootfs, "/etc/group")
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry { name: f[0].into(), gid: f[2].parse().ok()?, members: f[3].split(',').filter(|m| !m.is_empty()).map(String::from).collect() })
        })
        .collect()
}

/// A user or group name found in neither the image's /etc/passwd nor its /etc/group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// No passwd entry has this name.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    /// No group entry has this name.
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
}

/// Resolves a `USER` value (empty means root) in `rootfs`.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ExecUser, UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(rootfs);
    // No USER: uid 0, by its passwd entry when there is one (an image without /etc/passwd,
    // such as a scratch image with one static binary, still runs as root).
    let user = if user.is_empty() { users.iter().find(|e| e.uid == 0).map_or("0", |e| e.name.as_str()) } else { user };
    let entry = match user.parse::<u32>() {
        Ok(uid) => users.iter().find(|e| e.uid == uid),
        Err(_) => users.iter().find(|e| e.name == user),
    };
    let (uid, mut gid, home, name) = match (entry, user.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone())),
        (None, Ok(uid)) => (uid, 0, "/".to_string(), None),
        (None, Err(_)) => return Err(UserError::UnknownUser(user.to_string())),
    };
    let all_groups = groups(rootfs);
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match all_groups.iter().find(|e| e.name == g) {
                Some(e) => e.gid,
                None => return Err(UserError::UnknownGroup(g.to_string())),
            },
        };
    }
    // Supplementary groups are the groups listing the user by name, and nothing else: the
    // primary gid is not added (BuildKit's GetExecUser; `id` prints no `groups=` for a user
    // whose own group does not list it), and an explicit group means none.
    let supplementary: Vec<u32> = match (&name, group) {
        (Some(n), None) => all_groups.iter().filter(|e| e.members.iter().any(|m| m == n)).map(|e| e.gid).collect(),
        _ => Vec::new(),
    };
    Ok(ExecUser { uid, gid, groups: supplementary, home: if home.is_empty() { "/".into() } else { home } })
}

/// Looks up a `--chown` value as BuildKit's file operations do (`llb.WithUser` and the
/// solver's `readUser`): a number or `root` is that id for the user *and* its group (no
/// passwd lookup: `--chown=1500` is 1500:1500 even when passwd gives 1500 another group), a
/// name takes uid and gid from /etc/passwd, and a group part overrides the gid. Unknown names
/// are errors here; BuildKit would silently use 0 for them.
pub fn resolve_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32), UserError> {
    file_owner(rootfs, spec, true)
}

/// The owner of a directory WORKDIR creates under `USER spec`: BuildKit's mkdir with
/// `llb.WithUser(user)`, so [`resolve_chown`]'s rules, except that a name found in neither file
/// gives 0 (user) or leaves the gid alone (group), as BuildKit's `readUser` does; `USER root`
/// needs no /etc/passwd (a scratch image), and `USER 9999` makes directories 9999:9999.
pub fn resolve_workdir_owner(rootfs: &Path, spec: &str) -> (u32, u32) {
    file_owner(rootfs, spec, false).unwrap_or((0, 0))
}

/// `root` or a decimal number as an id (`llb`'s parseUID).
fn parse_id(s: &str) -> Option<u32> {
    if s == "root" { Some(0) } else { s.parse().ok() }
}

fn file_owner(rootfs: &Path, spec: &str, strict: bool) -> Result<(u32, u32), UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, mut gid) = match parse_id(user) {
        Some(id) => (id, id),
        None => match passwd(rootfs).iter().find(|e| e.name == user) {
            Some(e) => (e.uid, e.gid),
            None if strict => return Err(UserError::UnknownUser(user.to_string())),
            None => {
                tracing::warn!(user, "USER names no entry in /etc/passwd: the directory is owned by uid 0, as BuildKit does");
                (0, 0)
            }
        },
    };
    if let Some(g) = group {
        match parse_id(g) {
            Some(id) => gid = id,
            None => match groups(rootfs).iter().find(|e| e.name == g) {
                Some(e) => gid = e.gid,
                None if strict => return Err(UserError::UnknownGroup(g.to_string())),
                None => tracing::warn!(group = g, "USER names no entry in /etc/group: the directory keeps the user's gid, as BuildKit does"),
            },
        }
    }
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_groups() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("etc")).expect("mkdir");
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:u:/home/user:/bin/sh\n").expect("write");
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nuser:x:1000:\nwheel:x:10:user\n").expect("write");
        let u = resolve_user(dir.path(), "user").expect("user");
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/user"));
        assert_eq!(u.groups, vec![10], "only the groups listing the user, not its primary group");
        assert!(resolve_user(dir.path(), "root").expect("root").groups.is_empty(), "root:x:0: lists nobody");
        let u = resolve_user(dir.path(), "user:wheel").expect("user:wheel");
        assert_eq!((u.uid, u.gid), (1000, 10));
        let u = resolve_user(dir.path(), "4242").expect("numeric");
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert!(resolve_user(dir.path(), "nobody").is_err());
        assert_eq!(resolve_chown(dir.path(), "user").expect("chown"), (1000, 1000));
        assert_eq!(resolve_chown(dir.path(), "1:wheel").expect("chown"), (1, 10));
        assert_eq!(resolve_chown(dir.path(), "1000").expect("chown"), (1000, 1000));
        assert!(resolve_chown(dir.path(), "nobody").is_err(), "--chown keeps naming unknown users");
        let root = resolve_user(dir.path(), "").expect("no USER");
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn no_user_without_passwd_is_uid_0() {
        let empty = tempfile::tempdir().expect("tempdir");
        let u = resolve_user(empty.path(), "").expect("no USER, no passwd");
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/"));
        assert!(resolve_user(empty.path(), "root").is_err(), "an explicit name still needs an entry");
    }

    /// BuildKit's WORKDIR owner (checked against dockerd 20.10): a number is uid:uid whatever
    /// passwd says, a name takes passwd's gid, `root` needs no passwd, unknown names give 0 or
    /// keep the gid.
    #[test]
    fn workdir_owner_follows_buildkit() {
        let empty = tempfile::tempdir().expect("tempdir");
        assert_eq!(resolve_workdir_owner(empty.path(), "root"), (0, 0));
        assert_eq!(resolve_workdir_owner(empty.path(), "9999"), (9999, 9999));
        assert_eq!(resolve_workdir_owner(empty.path(), "7:root"), (7, 0));
        assert_eq!(resolve_chown(empty.path(), "root").expect("root without passwd"), (0, 0));
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("etc")).expect("mkdir");
        std::fs::write(dir.path().join("etc/passwd"), "odd:x:1500:100:odd:/home/odd:/bin/sh\n").expect("write");
        std::fs::write(dir.path().join("etc/group"), "staff:x:100:\n").expect("write");
        assert_eq!(resolve_workdir_owner(dir.path(), "1500"), (1500, 1500));
        assert_eq!(resolve_workdir_owner(dir.path(), "odd"), (1500, 100));
        assert_eq!(resolve_workdir_owner(dir.path(), "odd:nosuch"), (1500, 100));
        assert_eq!(resolve_workdir_owner(dir.path(), "nosuch"), (0, 0));
        assert_eq!(resolve_workdir_owner(dir.path(), "1500:staff"), (1500, 100));
    }
}
