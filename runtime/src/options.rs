//! Tier-up thresholds: declared once (name, environment variable, help text, default), read from
//! the environment at start-up and changed through `peregrine.set_thresholds`.
//!
//! Thresholds live in atomics so any thread can read them without the GIL; writers hold the GIL.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// The largest accepted threshold. Counters are `u32`; keeping a margin below `u32::MAX` leaves
/// that value free to mean "off".
pub const MAX_THRESHOLD: u32 = 1_000_000_000;
const OFF: u32 = u32::MAX;

/// One declared option.
pub struct OptionSpec {
    pub name: &'static str,
    pub env_var: &'static str,
    pub help: &'static str,
    /// Whether the value `off` is accepted.
    pub allows_off: bool,
    pub default: u32,
    value: AtomicU32,
}

impl OptionSpec {
    const fn new(
        name: &'static str,
        env_var: &'static str,
        help: &'static str,
        allows_off: bool,
        default: u32,
    ) -> Self {
        OptionSpec { name, env_var, help, allows_off, default, value: AtomicU32::new(default) }
    }

    /// The current value; `None` means off.
    #[inline]
    pub fn get(&self) -> Option<u32> {
        match self.value.load(Ordering::Relaxed) {
            OFF => None,
            n => Some(n),
        }
    }

    /// Where machine code reads the value in place: a `u32`, [`OptionSpec::OFF`] for off.
    pub fn value_addr(&self) -> *const u32 {
        self.value.as_ptr() as *const u32
    }

    /// The value [`OptionSpec::value_addr`] holds for off.
    pub const OFF: u32 = OFF;

    /// Sets a value already validated by [`OptionSpec::check`].
    pub fn set(&self, value: Option<u32>) {
        debug_assert!(value.is_some() || self.allows_off);
        self.value.store(value.unwrap_or(OFF), Ordering::Relaxed);
    }

    /// Validates a count given as an integer (the Python API path).
    pub fn check_count(&self, n: i128) -> Result<u32, OptionError> {
        if n < 0 || n > MAX_THRESHOLD as i128 {
            return Err(self.error(n.to_string()));
        }
        Ok(n as u32)
    }

    /// Parses a value written as text (the environment path): a count, or `off` where allowed.
    pub fn parse(&self, text: &str) -> Result<Option<u32>, OptionError> {
        let t = text.trim();
        if self.allows_off && t.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        match t.parse::<i128>() {
            Ok(n) => self.check_count(n).map(Some),
            Err(_) => Err(self.error(text.to_string())),
        }
    }

    /// What values this option takes, for error messages.
    pub fn expected(&self) -> String {
        if self.allows_off {
            format!("an integer from 0 to {MAX_THRESHOLD} or \"off\"")
        } else {
            format!("an integer from 0 to {MAX_THRESHOLD}")
        }
    }

    fn error(&self, value: String) -> OptionError {
        OptionError { option: self.name, value, expected: self.expected() }
    }
}

/// A value an option does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    pub option: &'static str,
    pub value: String,
    pub expected: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} must be {}, got {:?}", self.option, self.expected, self.value)
    }
}

impl std::error::Error for OptionError {}

/// Entries (calls, plus loop iterations once the baseline counts them) before baseline compilation;
/// 0 compiles on the first call, off leaves every frame in the interpreter (the hook alone, which
/// is how its cost is measured).
pub static BASELINE_THRESHOLD: OptionSpec = OptionSpec::new(
    "baseline",
    "PEREGRINE_BASELINE_THRESHOLD",
    "entries of a code object before the baseline tier compiles it (0: on first call, off: never)",
    true,
    200,
);

/// Entries before the optimizing tier compiles a code object; off disables tier 2.
pub static OPTIMIZE_THRESHOLD: OptionSpec = OptionSpec::new(
    "optimize",
    "PEREGRINE_OPTIMIZE_THRESHOLD",
    "entries of a code object before the optimizer compiles it (0: on first call, off: never)",
    true,
    10_000,
);

/// Every declared option, for documentation and start-up parsing.
pub static ALL: [&OptionSpec; 2] = [&BASELINE_THRESHOLD, &OPTIMIZE_THRESHOLD];

/// Reads every option's environment variable through `getenv`. Bad values keep the default and are
/// returned as errors (with the variable's name) for the caller to report; nothing is printed here.
pub fn load_from_env(getenv: impl Fn(&str) -> Option<String>) -> Vec<OptionError> {
    let mut errors = Vec::new();
    for spec in ALL {
        if let Some(text) = getenv(spec.env_var) {
            match spec.parse(&text) {
                Ok(v) => spec.set(v),
                Err(mut e) => {
                    e.option = spec.env_var;
                    errors.push(e);
                }
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(allows_off: bool) -> OptionSpec {
        OptionSpec::new("t", "PEREGRINE_T", "test", allows_off, 7)
    }

    #[test]
    fn parses_counts_and_off() {
        let s = spec(true);
        assert_eq!(s.parse("0"), Ok(Some(0)));
        assert_eq!(s.parse(" 42 "), Ok(Some(42)));
        assert_eq!(s.parse("off"), Ok(None));
        assert_eq!(s.parse("OFF"), Ok(None));
        assert_eq!(s.parse(&MAX_THRESHOLD.to_string()), Ok(Some(MAX_THRESHOLD)));
    }

    #[test]
    fn rejects_bad_values() {
        let s = spec(false);
        for bad in ["off", "-1", "1.5", "", "ten", "1000000001"] {
            let e = s.parse(bad).unwrap_err();
            assert_eq!(e.option, "t");
            assert_eq!(e.value, bad);
        }
        assert!(spec(true).parse("-3").is_err());
    }

    #[test]
    fn set_and_get_round_trip() {
        let s = spec(true);
        assert_eq!(s.get(), Some(7));
        s.set(None);
        assert_eq!(s.get(), None);
        s.set(Some(0));
        assert_eq!(s.get(), Some(0));
    }

    #[test]
    fn env_errors_name_the_variable_and_keep_the_value() {
        // Uses the real statics, so restore them afterwards.
        let before = (BASELINE_THRESHOLD.get(), OPTIMIZE_THRESHOLD.get());
        let errors = load_from_env(|var| match var {
            "PEREGRINE_BASELINE_THRESHOLD" => Some("-5".into()),
            "PEREGRINE_OPTIMIZE_THRESHOLD" => Some("off".into()),
            _ => None,
        });
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].option, "PEREGRINE_BASELINE_THRESHOLD");
        assert!(errors[0].to_string().contains("\"-5\""));
        assert_eq!(BASELINE_THRESHOLD.get(), before.0);
        assert_eq!(OPTIMIZE_THRESHOLD.get(), None);
        BASELINE_THRESHOLD.set(before.0);
        OPTIMIZE_THRESHOLD.set(before.1);
    }
}
