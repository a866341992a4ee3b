//! Resolving `USER name[:group]` against the image's /etc/passwd and /etc/group.

use crate::rootfs::resolve_in_root;
use std::path::Path;

/// A user as a RUN sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups from /etc/group.
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
            Some(GroupEntry {
                name: f[0].into(),
                gid: f[2].parse().ok()?,
                members: f[3].split(',').filter(|m| !m.is_empty()).map(String::from).collect(),
            })
        })
        .collect()
}

/// Resolves a `USER` value (empty means root) in `rootfs`.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ExecUser, String> {
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
        (None, Err(_)) => return Err(format!("unable to find user {user}: no matching entries in passwd file")),
    };
    let all_groups = groups(rootfs);
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match all_groups.iter().find(|e| e.name == g) {
                Some(e) => e.gid,
                None => return Err(format!("unable to find group {g}: no matching entries in group file")),
            },
        };
    }
    let mut supplementary: Vec<u32> = match (&name, group) {
        (Some(n), None) => all_groups.iter().filter(|e| e.members.iter().any(|m| m == n)).map(|e| e.gid).collect(),
        _ => Vec::new(),
    };
    if !supplementary.contains(&gid) {
        supplementary.insert(0, gid);
    }
    Ok(ExecUser { uid, gid, groups: supplementary, home: if home.is_empty() { "/".into() } else { home } })
}

/// Looks up a `--chown` value: `user[:group]`, names or numbers; a bare user takes its own group.
pub fn resolve_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(rootfs);
    let (uid, default_gid) = match user.parse::<u32>() {
        Ok(uid) => (uid, users.iter().find(|e| e.uid == uid).map_or(uid, |e| e.gid)),
        Err(_) => match users.iter().find(|e| e.name == user) {
            Some(e) => (e.uid, e.gid),
            None => return Err(format!("unable to find user {user}: no matching entries in passwd file")),
        },
    };
    let gid = match group {
        None => default_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match groups(rootfs).iter().find(|e| e.name == g) {
                Some(e) => e.gid,
                None => return Err(format!("unable to find group {g}: no matching entries in group file")),
            },
        },
    };
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
        assert_eq!(u.groups, vec![1000, 10]);
        let u = resolve_user(dir.path(), "user:wheel").expect("user:wheel");
        assert_eq!((u.uid, u.gid), (1000, 10));
        let u = resolve_user(dir.path(), "4242").expect("numeric");
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert!(resolve_user(dir.path(), "nobody").is_err());
        assert_eq!(resolve_chown(dir.path(), "user").expect("chown"), (1000, 1000));
        assert_eq!(resolve_chown(dir.path(), "1:wheel").expect("chown"), (1, 10));
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
}
