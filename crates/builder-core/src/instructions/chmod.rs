//! `--chmod` in its symbolic form (`u=rwx,go=rx`, `+x`, `a-w`, `g+X`), as BuildKit accepts
//! since Dockerfile 1.14: chmod(1) clauses applied to each copied file's own mode, `X` adding
//! execute only to directories and to files already executable by someone. No `who` means
//! everyone (no umask is applied).

/// A parsed symbolic mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolicMode {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    /// Bits of the classes named (`u` 0o4700, `g` 0o2070, `o` 0o1007 incl. special bits).
    who: u32,
    actions: Vec<(char, String)>,
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
        (!clauses.is_empty()).then_some(Self { clauses })
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
}
