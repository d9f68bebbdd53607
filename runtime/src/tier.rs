//! The execution tiers a frame can run in.

/// Which tier runs a code object's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Tier 0: CPython's own `_PyEval_EvalFrameDefault`.
    Interpreter,
    /// Tier 1: dynasm-rs templates, one per bytecode instruction.
    Baseline,
    /// Tier 2: SSA IR lowered through Cranelift.
    Optimized,
}

impl Tier {
    /// The name used by the Python API (`tier_of`, `compile(tier=...)`, `stats()` keys).
    pub fn name(self) -> &'static str {
        match self {
            Tier::Interpreter => "interpreter",
            Tier::Baseline => "baseline",
            Tier::Optimized => "optimized",
        }
    }

    /// Parses a tier name as the Python API spells it.
    pub fn from_name(name: &str) -> Option<Tier> {
        [Tier::Interpreter, Tier::Baseline, Tier::Optimized]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in [Tier::Interpreter, Tier::Baseline, Tier::Optimized] {
            assert_eq!(Tier::from_name(t.name()), Some(t));
        }
        assert_eq!(Tier::from_name("jit"), None);
    }
}
