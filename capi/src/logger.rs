//! The `log` backend: compile and fallback events to stderr, switched on by `PEREGRINE_LOG`.

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            // The logger is the one sink for library messages; it writes to the process's stderr.
            eprintln!("peregrine[{}] {}", record.level().as_str().to_lowercase(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// The accepted values of `PEREGRINE_LOG`.
pub const LOG_LEVELS: &str = "off, error, warn, info, debug, trace";

/// Installs the logger at the level named by `value` (unset: off). Returns an error message for a
/// value it does not know, leaving logging off.
pub fn init(value: Option<&str>) -> Result<(), String> {
    let level = match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("0") | Some("off") => LevelFilter::Off,
        Some("error") => LevelFilter::Error,
        Some("warn") => LevelFilter::Warn,
        Some("info") | Some("1") => LevelFilter::Info,
        Some("debug") => LevelFilter::Debug,
        Some("trace") => LevelFilter::Trace,
        Some(_) => {
            return Err(format!(
                "PEREGRINE_LOG must be one of {LOG_LEVELS}, got {:?}; logging stays off",
                value.unwrap_or_default()
            ))
        }
    };
    // Fails only if a logger is already set (module imported twice in one process): keep it.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
    Ok(())
}
