//! Go-compatible parsers for the values Docker tooling writes in Go syntax: booleans as
//! `strconv.ParseBool` reads them and durations as `time.ParseDuration` reads them.
//!
//! Dockerfiles (`HEALTHCHECK --interval=30s`, `RUN --mount=...,readonly=1`), kaniko's
//! command line (`--cache=true`) and drone's plugin environment (`PLUGIN_CACHE=True`) all
//! take these forms; strata parses every one of them here so that `strata plan`,
//! `strata build` and the plugin agree on what is accepted.
//!
//! ```
//! use strata_dockerfile::go_parse::{parse_bool, parse_duration, GoDuration};
//! assert_eq!(parse_bool("T"), Ok(true));
//! assert!(parse_bool("yes").is_err());
//! assert_eq!(parse_duration("1h2m3.5s").map(GoDuration::nanos), Ok(3_723_500_000_000));
//! assert_eq!(parse_duration("5000μs").map(|d| d.to_string()), Ok("5ms".to_string()));
//! ```

use std::fmt;
use std::time::Duration;

/// A value Go's `strconv.ParseBool` refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("strconv.ParseBool: parsing {value:?}: invalid syntax (expected one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)")]
pub struct ParseBoolError {
    /// The text that was not a boolean.
    pub value: String,
}

/// Go's `strconv.ParseBool`: `1 t T TRUE true True` are true, `0 f F FALSE false False`
/// are false, anything else (`yes`, `on`, `tRUE`, ` true`) is an error.
pub fn parse_bool(text: &str) -> Result<bool, ParseBoolError> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ParseBoolError { value: text.to_string() }),
    }
}

/// Why Go's `time.ParseDuration` refuses a text; the messages are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDurationError {
    /// Not of the form `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or out of range.
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    /// A number without a unit (`5`, `1h30`).
    #[error("time: missing unit in duration {0:?} (use ns, us, ms, s, m or h)")]
    MissingUnit(String),
    /// A unit Go does not know (`1d`, `2w`, `3sec`).
    #[error("time: unknown unit {unit:?} in duration {text:?} (use ns, us, ms, s, m or h)")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration as written.
        text: String,
    },
}

/// A Go `time.Duration`: signed nanoseconds in an `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub i64);

impl GoDuration {
    /// Nanoseconds, negative for a negative duration.
    pub fn nanos(self) -> i64 {
        self.0
    }

    /// The duration as a [`std::time::Duration`], `None` when negative.
    pub fn to_std(self) -> Option<Duration> {
        u64::try_from(self.0).ok().map(Duration::from_nanos)
    }
}

impl From<Duration> for GoDuration {
    /// Saturates at Go's largest duration (about 292 years).
    fn from(d: Duration) -> Self {
        Self(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for GoDuration {
    /// Go's `Duration.String`: `1h2m3.5s`, `1.5ms`, `0s`, `-2m0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_nanos(self.0))
    }
}

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // µ MICRO SIGN
    ("\u{3bc}s", 1_000), // μ GREEK SMALL LETTER MU
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const LIMIT: u64 = 1 << 63;

/// Go's `time.ParseDuration`, exactly: a sign, then one or more decimal numbers each with
/// an optional fraction and a unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`), such as
/// `300ms`, `-1.5h`, `1h2m3.5s`; a bare `0` is zero. Out of `i64` nanoseconds is an error.
pub fn parse_duration(text: &str) -> Result<GoDuration, ParseDurationError> {
    let invalid = || ParseDurationError::Invalid(text.to_string());
    let mut s = text.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(GoDuration(0));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let before = s.len();
        let (v, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = before != s.len();
        let mut f = 0u64;
        let mut scale = 1f64;
        let mut post = false;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let (x, sc, rest) = leading_fraction(s);
            f = x;
            scale = sc;
            s = rest;
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s.iter().position(|&c| c == b'.' || c.is_ascii_digit()).unwrap_or(s.len());
        if unit_len == 0 {
            return Err(ParseDurationError::MissingUnit(text.to_string()));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let Some(&(_, mult)) = UNITS.iter().find(|(u, _)| u.as_bytes() == unit) else {
            return Err(ParseDurationError::UnknownUnit { unit: String::from_utf8_lossy(unit).into_owned(), text: text.to_string() });
        };
        if v > LIMIT / mult {
            return Err(invalid());
        }
        let mut v = v * mult;
        if f > 0 {
            // As Go: float64 keeps fractions of hours nanosecond-accurate.
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let frac = (f as f64 * (mult as f64 / scale)) as u64;
            v = v.checked_add(frac).ok_or_else(invalid)?;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        // total <= 2^63, so -total fits (i64::MIN at most).
        return Ok(GoDuration(0i64.wrapping_sub_unsigned(total)));
    }
    i64::try_from(total).map(GoDuration).map_err(|_| invalid())
}

/// `[0-9]*` as a number; `None` on overflow past 2^63.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > LIMIT {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// The digits of a fraction and 10^(digits kept); extra digits only stop adding precision.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale = 1f64;
    let mut overflow = false;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        let c = s[i];
        i += 1;
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[i..])
}

/// Go's `Duration.String` of `nanos`.
fn format_nanos(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".into(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "\u{b5}s"),
            _ => (6, "ms"),
        };
        let frac = frac_digits(&mut u, prec);
        out.push_str(&u.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let frac = frac_digits(&mut u, 9);
        let secs = u % 60;
        u /= 60;
        if u > 0 {
            let mins = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{mins}m"));
        }
        out.push_str(&format!("{secs}{frac}s"));
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Splits off the last `prec` decimal digits of `*v` as `.ddd` without trailing zeros.
fn frac_digits(v: &mut u64, prec: u32) -> String {
    let div = 10u64.pow(prec);
    let frac = *v % div;
    *v /= div;
    if frac == 0 {
        return String::new();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!(".{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i64 = 1;
    const US: i64 = 1_000;
    const MS: i64 = 1_000_000;
    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;

    /// Go's `parseDurationTests` (time/time_test.go).
    #[test]
    fn durations_as_go_reads_them() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10 * NS),
            ("11us", 11 * US),
            ("12\u{b5}s", 12 * US),
            ("12\u{3bc}s", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
            ("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * M),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * M),
            ("0.830103483285477580700h", 49 * M + 48 * S + 372_539_827),
            ("1h2m3.5s", H + 2 * M + 3 * S + 500 * MS),
            ("5000\u{3bc}s", 5 * MS),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_duration(text), Ok(GoDuration(want)), "{text}");
        }
    }

    /// Go's `parseDurationErrorTests`, plus the message kinds.
    #[test]
    fn durations_go_refuses() {
        for text in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "\u{85}\u{85}",
            "\u{fffd}",
            "hello world",
            "1h30",
            "1.2.3s",
            " 1s",
            "1s ",
            "1S",
            "--1s",
            "1e3s",
            "9223372036854775810ns",
            "9223372036854775808ns",
            "-9223372036854775809ns",
            "9223372036854776us",
            "3000000h",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} must be refused");
        }
        assert_eq!(parse_duration("5").unwrap_err().to_string(), "time: missing unit in duration \"5\" (use ns, us, ms, s, m or h)");
        assert!(matches!(
            parse_duration("2d"),
            Err(ParseDurationError::UnknownUnit { unit, .. }) if unit == "d"
        ));
        assert!(matches!(parse_duration("3000000h"), Err(ParseDurationError::Invalid(_))));
    }

    /// Go's `durationTests` for `Duration.String`.
    #[test]
    fn durations_print_as_go_prints_them() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1100, "1.1\u{b5}s"),
            (2200 * US, "2.2ms"),
            (3300 * MS, "3.3s"),
            (4 * M + 5 * S, "4m5s"),
            (4 * M + 5001 * MS, "4m5.001s"),
            (5 * H + 6 * M + 7001 * MS, "5h6m7.001s"),
            (8 * M + 1, "8m0.000000001s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (M, "1m0s"),
            (-2 * M, "-2m0s"),
        ];
        for &(nanos, want) in cases {
            assert_eq!(GoDuration(nanos).to_string(), want);
        }
    }

    #[test]
    fn std_conversion() {
        assert_eq!(GoDuration(1500).to_std(), Some(Duration::from_nanos(1500)));
        assert_eq!(GoDuration(-1).to_std(), None);
        assert_eq!(GoDuration::from(Duration::from_secs(u64::MAX)), GoDuration(i64::MAX));
    }

    /// strconv's `atobTests`.
    #[test]
    fn bools_as_go_reads_them() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["", "asdf", "yes", "no", "on", "off", "tRUE", "fAlSe", " true", "true ", "2", "00", "y"] {
            assert!(parse_bool(bad).is_err(), "{bad:?}");
        }
        assert!(parse_bool("yes").unwrap_err().to_string().contains("parsing \"yes\": invalid syntax"));
    }
}
