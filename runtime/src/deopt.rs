//! Why a frame that started in compiled code was handed to the interpreter mid-way.

/// A reason compiled code handed its frame to the interpreter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum DeoptReason {
    /// An exception was raised: the interpreter unwinds through the exception table and runs the
    /// handler, and the frame finishes there.
    Exception = 0,
    /// sys.settrace/sys.setprofile became active while the frame ran.
    Tracing = 1,
    /// The eval breaker asked for signals, pending calls or an asynchronous exception.
    EvalBreaker = 2,
    /// The frame was resumed mid-way (not at its first instruction).
    ResumedFrame = 3,
    /// The recursion limit was reached on entry: the interpreter raises RecursionError.
    RecursionLimit = 4,
    /// An instruction the tier leaves to the interpreter was reached.
    InterpreterOnlyInstruction = 5,
    /// An exception was raised and compiled code unwound the frame to its handler itself (the
    /// second half of a superinstruction whose halves have different handlers); the interpreter
    /// runs the handler.
    ExceptionHandler = 6,
}

impl DeoptReason {
    pub const ALL: [DeoptReason; 7] = [
        DeoptReason::Exception,
        DeoptReason::Tracing,
        DeoptReason::EvalBreaker,
        DeoptReason::ResumedFrame,
        DeoptReason::RecursionLimit,
        DeoptReason::InterpreterOnlyInstruction,
        DeoptReason::ExceptionHandler,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn name(self) -> &'static str {
        match self {
            DeoptReason::Exception => "exception",
            DeoptReason::Tracing => "tracing",
            DeoptReason::EvalBreaker => "eval_breaker",
            DeoptReason::ResumedFrame => "resumed_frame",
            DeoptReason::RecursionLimit => "recursion_limit",
            DeoptReason::InterpreterOnlyInstruction => "interpreter_only_instruction",
            DeoptReason::ExceptionHandler => "exception_handler",
        }
    }

    /// From the code passed by machine code; an unknown value is counted as an
    /// interpreter-only instruction rather than trusted.
    pub fn from_u32(v: u32) -> DeoptReason {
        Self::ALL.get(v as usize).copied().unwrap_or(DeoptReason::InterpreterOnlyInstruction)
    }
}
