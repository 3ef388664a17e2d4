//! Staged enforcement: whether a rule blocks what it rejects or only
//! records it, and how a route's mode changes at its `enforce_after` instant.

/// Whether a rule blocks what it rejects or only records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    ReportOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::ReportOnly => "report-only",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enforce" => Some(Self::Enforce),
            "report-only" => Some(Self::ReportOnly),
            _ => None,
        }
    }
}

/// A route's mode over time: `enforce_after` keeps an enforcing route
/// report-only until that instant (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub mode: Mode,
    pub enforce_after: Option<i64>,
}

impl Schedule {
    pub const ENFORCE: Self = Self { mode: Mode::Enforce, enforce_after: None };

    pub fn mode_at(&self, now: i64) -> Mode {
        match (self.mode, self.enforce_after) {
            (Mode::Enforce, Some(after)) if now < after => Mode::ReportOnly,
            (mode, _) => mode,
        }
    }
}
