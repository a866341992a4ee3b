//! `COPY/ADD --chmod`: an octal mode up to 07777, or the symbolic form (`u=rwx,go=rx`, `+x`,
//! `a-w`, `g+X`) BuildKit accepts since Dockerfile 1.14: chmod(1) clauses applied to each
//! copied file's own mode, `X` adding execute only to directories and to files already
//! executable by someone. No `who` means everyone (no umask is applied).

use crate::Chmod;

impl Chmod {
    /// Parses a `--chmod` value (after expansion); the error is the message for the line.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let octal = || match u32::from_str_radix(spec, 8) {
            Ok(m) if m <= 0o7777 => Ok(Self::Octal(m)),
            _ => Err(format!("--chmod={spec}: expected an octal mode such as 0755 or a symbolic one such as u=rwx,go=rx")),
        };
        if spec.bytes().all(|b| b.is_ascii_digit()) {
            return octal();
        }
        match SymbolicMode::parse(spec) {
            Some(sym) => Ok(Self::Symbolic(sym)),
            None => octal(),
        }
    }
}

/// A parsed symbolic mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolicMode {
    /// The text it was parsed from, for plans and messages.
    text: String,
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    /// Bits of the classes named (`u` 0o4700, `g` 0o2070, `o` 0o1007 incl. special bits).
    who: u32,
    actions: Vec<(char, String)>,
}

impl std::fmt::Display for SymbolicMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl SymbolicMode {
    /// Parses `spec`; None when it is not a symbolic mode.
    pub fn parse(spec: &str) -> Option<Self> {
        let mut clauses = Vec::new();
        for clause in spec.split(',') {
            let chars: Vec<char> = clause.chars().collect();
            let mut i = 0;
            let mut who = 0;
            while i < chars.len() && "ugoa".contains(chars[i]) {
                who |= match chars[i] {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    _ => 0o7777,
                };
                i += 1;
            }
            if who == 0 {
                who = 0o7777;
            }
            let mut actions = Vec::new();
            if i >= chars.len() {
                return None;
            }
            while i < chars.len() {
                let op = chars[i];
                if !"+-=".contains(op) {
                    return None;
                }
                i += 1;
                let start = i;
                while i < chars.len() && "rwxXst".contains(chars[i]) {
                    i += 1;
                }
                actions.push((op, chars[start..i].iter().collect()));
            }
            clauses.push(Clause { who, actions });
        }
        (!clauses.is_empty()).then(|| Self { text: spec.to_string(), clauses })
    }

    /// The mode of a file with mode `mode` (permission bits) after applying the clauses.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let mut mode = mode & 0o7777;
        for c in &self.clauses {
            for (op, perms) in &c.actions {
                let mut bits = 0;
                for p in perms.chars() {
                    bits |= match p {
                        'r' => 0o444,
                        'w' => 0o222,
                        'x' => 0o111,
                        'X' if is_dir || mode & 0o111 != 0 => 0o111,
                        's' => 0o6000,
                        't' => 0o1000,
                        _ => 0,
                    };
                }
                let bits = bits & c.who;
                match op {
                    '+' => mode |= bits,
                    '-' => mode &= !bits,
                    _ => mode = (mode & !(c.who & 0o7777)) | bits,
                }
            }
        }
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::SymbolicMode;
    use crate::Chmod;

    fn apply(spec: &str, mode: u32, dir: bool) -> u32 {
        SymbolicMode::parse(spec).unwrap_or_else(|| panic!("{spec} parses")).apply(mode, dir)
    }

    #[test]
    fn chmod_one_semantics() {
        assert_eq!(apply("+x", 0o644, false), 0o755);
        assert_eq!(apply("u=rwx,go=rx", 0o600, false), 0o755);
        assert_eq!(apply("a-w", 0o666, false), 0o444);
        assert_eq!(apply("g+X", 0o640, false), 0o640, "X: no execute for plain files");
        assert_eq!(apply("g+X", 0o740, false), 0o750);
        assert_eq!(apply("g+X", 0o700, true), 0o710);
        assert_eq!(apply("o=", 0o777, false), 0o770);
        assert_eq!(apply("u+s", 0o755, false), 0o4755);
        assert_eq!(apply("go-rwx,u+rw", 0o044, false), 0o600);
        assert!(SymbolicMode::parse("u").is_none() && SymbolicMode::parse("z+x").is_none() && SymbolicMode::parse("").is_none());
    }

    #[test]
    fn octal_or_symbolic() {
        assert_eq!(Chmod::parse("0755"), Ok(Chmod::Octal(0o755)));
        assert_eq!(Chmod::parse("4755"), Ok(Chmod::Octal(0o4755)));
        assert_eq!(Chmod::parse("640"), Ok(Chmod::Octal(0o640)));
        assert!(Chmod::parse("17777").is_err(), "above 07777");
        assert!(Chmod::parse("0999").is_err(), "not octal");
        match Chmod::parse("u+x") {
            Ok(Chmod::Symbolic(s)) => assert_eq!(s.to_string(), "u+x"),
            other => panic!("{other:?}"),
        }
        assert_eq!(Chmod::parse("nonsense").unwrap_err(), "--chmod=nonsense: expected an octal mode such as 0755 or a symbolic one such as u=rwx,go=rx");
        assert_eq!(Chmod::parse("755").map(|c| c.to_string()), Ok("0755".into()));
    }
}
