//! Why a frame ran in the interpreter although the JIT was on. Every such frame is counted under
//! exactly one reason (`stats()["fallbacks"]`).

/// A reason a frame was handed to the interpreter instead of a compiled tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackReason {
    /// `sys.settrace` / `sys.setprofile` was active when the frame started: only the interpreter
    /// emits trace events.
    Tracing,
    /// The frame was entered with `throwflag` set (`generator.throw()`): the interpreter raises the
    /// pending exception at the frame's current position.
    ThrowFlag,
    /// A tier refused to compile this code object; the reason is counted in `compile_failures`.
    Uncompilable,
    /// The call that creates a generator or coroutine object (its `RETURN_GENERATOR` needs the
    /// interpreter); the object's frame is resumed in compiled code afterwards.
    GeneratorCreation,
}

impl FallbackReason {
    pub const ALL: [FallbackReason; 4] = [
        FallbackReason::Tracing,
        FallbackReason::ThrowFlag,
        FallbackReason::Uncompilable,
        FallbackReason::GeneratorCreation,
    ];
    pub const COUNT: usize = Self::ALL.len();

    /// The stable name shown by `stats()` and the log.
    pub fn name(self) -> &'static str {
        match self {
            FallbackReason::Tracing => "tracing",
            FallbackReason::ThrowFlag => "throwflag",
            FallbackReason::Uncompilable => "uncompilable",
            FallbackReason::GeneratorCreation => "generator_creation",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_names_unique() {
        for (i, r) in FallbackReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<_> = FallbackReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FallbackReason::COUNT);
    }
}
