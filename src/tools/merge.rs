//! Decision logs of several replicas read as one, in time order: each file
//! is in the order its replica wrote it, so the files are merged line by
//! line (the earliest `timestamp` first, the first file named on a tie),
//! streaming, without holding any log in memory. A line that does not parse
//! keeps its place after the line before it in its own file. One file is
//! read as it is.

use std::io::{BufRead, BufReader, Lines};
use std::path::PathBuf;

use serde::Deserialize;

use crate::rfc3339;

/// One line of one of the logs: its text and its number in its file.
pub struct Line {
    pub number: usize,
    pub text: String,
}

struct Source {
    name: String,
    lines: Lines<Box<dyn BufRead>>,
    number: usize,
    /// The next line and the time it sorts at.
    head: Option<(i128, Line)>,
    /// The time of the last line that had one.
    last: i128,
}

/// The lines of `paths` (`-` is standard input, at most once), merged by time.
pub struct Merged {
    sources: Vec<Source>,
}

#[derive(Deserialize)]
struct Stamp<'a> {
    #[serde(borrow)]
    timestamp: std::borrow::Cow<'a, str>,
}

impl Merged {
    pub fn open(paths: &[PathBuf]) -> Result<Self, String> {
        if paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
            return Err("standard input (-) can be named once".into());
        }
        let mut sources = Vec::with_capacity(paths.len());
        for path in paths {
            let input: Box<dyn BufRead> = if path.as_os_str() == "-" {
                Box::new(BufReader::new(std::io::stdin()))
            } else {
                let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Box::new(BufReader::new(file))
            };
            let name = path.display().to_string();
            let mut source = Source { name, lines: input.lines(), number: 0, head: None, last: i128::MIN };
            source.advance()?;
            sources.push(source);
        }
        Ok(Self { sources })
    }

    /// The names of the logs, for messages.
    pub fn describe(paths: &[PathBuf]) -> String {
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    }
}

impl Source {
    fn advance(&mut self) -> Result<(), String> {
        self.head = match self.lines.next() {
            None => None,
            Some(Err(e)) => return Err(format!("reading {}: {e}", self.name)),
            Some(Ok(text)) => {
                self.number += 1;
                if let Some(at) = time_of(&text) {
                    self.last = at;
                }
                Some((self.last, Line { number: self.number, text }))
            }
        };
        Ok(())
    }
}

fn time_of(line: &str) -> Option<i128> {
    let stamp: Stamp = serde_json::from_str(line).ok()?;
    rfc3339::parse_millis(&stamp.timestamp)
}

impl Iterator for Merged {
    type Item = Result<Line, String>;

    fn next(&mut self) -> Option<Self::Item> {
        // `min_by_key` keeps the first of equal keys: the first file named.
        let (_, source) =
            self.sources.iter_mut().filter_map(|s| Some((s.head.as_ref()?.0, s))).min_by_key(|(at, _)| *at)?;
        let (_, line) = source.head.take()?;
        if let Err(e) = source.advance() {
            return Some(Err(e));
        }
        Some(Ok(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn log(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    fn at(ms: u32) -> String {
        format!(r#"{{"timestamp":"2026-04-01T00:00:00.{ms:03}Z","instance":"x"}}"#)
    }

    #[test]
    fn lines_of_several_logs_come_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = log(dir.path(), "a", &[&at(1), &at(5), "garbage", &at(9)]);
        let b = log(dir.path(), "b", &[&at(2), &at(5), &at(7)]);
        let merged: Vec<String> = Merged::open(&[a, b]).unwrap().map(|l| l.unwrap().text).collect();
        let expected = [at(1), at(2), at(5), "garbage".into(), at(5), at(7), at(9)];
        assert_eq!(merged, expected, "ties go to the first file; a bad line stays after its predecessor");
        assert!(Merged::open(&["-".into(), "-".into()]).is_err());
        assert!(Merged::open(&[dir.path().join("missing")]).is_err());
    }
}
