//! Jenkins cron schedules: five fields (minute hour day-of-month month day-of-week) with
//! `*`, ranges, lists, steps, names and Jenkins' `H` ("a hash of the job's name"), which
//! spreads jobs that all ask for "hourly" across the hour while keeping each job's slot stable.
//! Aliases: `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use sha2::{Digest, Sha256};

/// A parsed schedule: for each field, which values fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    /// Both day fields restricted: Jenkins (like cron) fires when either matches.
    day_or: bool,
}

/// (name, low, high) of each field.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses `spec` for the job named `seed` (its hash picks the `H` values).
    pub fn parse(spec: &str, seed: &str) -> Result<Schedule, String> {
        let spec = spec.trim();
        let expanded = match spec {
            "@yearly" | "@annually" => "H H H H *",
            "@monthly" => "H H H * *",
            "@weekly" => "H H * * H",
            "@daily" => "H H * * *",
            "@midnight" => "H H(0-2) * * *",
            "@hourly" => "H * * * *",
            other if other.starts_with('@') => return Err(format!("unknown alias `{other}`")),
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected 5 fields (minute hour day month weekday), found {}",
                fields.len()
            ));
        }
        let digest = Sha256::digest(seed.as_bytes());
        let mut sets = Vec::with_capacity(5);
        for (i, field) in fields.iter().enumerate() {
            let (name, low, high) = FIELDS[i];
            let hash = u32::from_be_bytes([
                digest[i * 4],
                digest[i * 4 + 1],
                digest[i * 4 + 2],
                digest[i * 4 + 3],
            ]);
            sets.push(parse_field(field, low, high, hash, i).map_err(|e| format!("{name}: {e}"))?);
        }
        let mut weekdays = sets.pop().unwrap_or_default();
        if weekdays[7] {
            weekdays[0] = true; // 7 is Sunday too
        }
        weekdays.truncate(7);
        let months = sets.pop().unwrap_or_default();
        let days = sets.pop().unwrap_or_default();
        let hours = sets.pop().unwrap_or_default();
        let minutes = sets.pop().unwrap_or_default();
        let day_or = fields[2] != "*" && fields[4] != "*";
        Ok(Schedule {
            minutes,
            hours,
            days,
            months,
            weekdays,
            day_or,
        })
    }

    fn matches(&self, t: &DateTime<Utc>) -> bool {
        let day = self.days[t.day() as usize];
        let weekday = self.weekdays[t.weekday().num_days_from_sunday() as usize];
        let day_ok = if self.day_or {
            day || weekday
        } else {
            day && weekday
        };
        self.minutes[t.minute() as usize]
            && self.hours[t.hour() as usize]
            && self.months[t.month() as usize]
            && day_ok
    }

    /// The first minute strictly after `after` at which the schedule fires (within 5 years).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut t = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = after + Duration::days(366 * 5);
        while t <= limit {
            if !self.months[t.month() as usize] {
                // Jump to the first minute of the next month.
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = t
                    .with_day(1)?
                    .with_hour(0)?
                    .with_minute(0)?
                    .with_month(m)?
                    .with_year(y)?;
                continue;
            }
            if self.matches(&t) {
                return Some(t);
            }
            t = if self.hours[t.hour() as usize] {
                t + Duration::minutes(1)
            } else {
                t.with_minute(0)? + Duration::hours(1)
            };
        }
        None
    }
}

fn value(text: &str, field: usize) -> Result<u32, String> {
    let upper = text.to_ascii_uppercase();
    if field == 3
        && let Some(i) = MONTHS.iter().position(|m| *m == upper)
    {
        return Ok(i as u32 + 1);
    }
    if field == 4
        && let Some(i) = DAYS.iter().position(|d| *d == upper)
    {
        return Ok(i as u32);
    }
    text.parse()
        .map_err(|_| format!("`{text}` is not a number"))
}

fn parse_field(
    field: &str,
    low: u32,
    high: u32,
    hash: u32,
    index: usize,
) -> Result<Vec<bool>, String> {
    let mut set = vec![false; high as usize + 1];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                Some(
                    s.parse::<u32>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| format!("bad step in `{part}`"))?,
                ),
            ),
            None => (part, None),
        };
        // Day-of-week H never picks 7, so H stays within 0-6 there.
        let h_high = if index == 4 { 6 } else { high };
        let (from, to, hashed) = if range == "*" {
            (low, high, false)
        } else if range == "H" {
            (low, h_high, true)
        } else if let Some(inner) = range.strip_prefix("H(").and_then(|r| r.strip_suffix(')')) {
            let (a, b) = inner
                .split_once('-')
                .ok_or_else(|| format!("`{range}`: use H(low-high)"))?;
            (value(a, index)?, value(b, index)?, true)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, index)?, value(b, index)?, false)
        } else {
            let v = value(range, index)?;
            (v, if step.is_some() { high } else { v }, false)
        };
        if from < low || to > high || from > to {
            return Err(format!("`{part}` is outside {low}-{high}"));
        }
        match (hashed, step) {
            (true, None) => set[(from + hash % (to - from + 1)) as usize] = true,
            (true, Some(step)) => {
                let start = from + hash % step.min(to - from + 1);
                for v in (start..=to).step_by(step as usize) {
                    set[v as usize] = true;
                }
            }
            (false, step) => {
                for v in (from..=to).step_by(step.unwrap_or(1) as usize) {
                    set[v as usize] = true;
                }
            }
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
    }

    #[test]
    fn plain_cron_fields() {
        let s = Schedule::parse("30 4 * * 1-5", "job").unwrap();
        // 2026-11-28 is a Saturday: the next weekday 04:30 is Monday 30th.
        assert_eq!(
            s.next_after(at(2026, 11, 28, 12, 0)),
            Some(at(2026, 11, 30, 4, 30))
        );
        let every_15 = Schedule::parse("*/15 * * * *", "job").unwrap();
        assert_eq!(
            every_15.next_after(at(2026, 1, 1, 0, 7)),
            Some(at(2026, 1, 1, 0, 15))
        );
        let named = Schedule::parse("0 0 1 JAN,jul SUN-SAT", "job").unwrap();
        assert_eq!(
            named.next_after(at(2026, 2, 1, 0, 0)),
            Some(at(2026, 7, 1, 0, 0))
        );
    }

    #[test]
    fn h_is_stable_per_job_and_spreads_jobs() {
        let a1 = Schedule::parse("H * * * *", "org/app").unwrap();
        let a2 = Schedule::parse("H * * * *", "org/app").unwrap();
        assert_eq!(a1, a2, "the same job always gets the same minute");
        let minutes: std::collections::HashSet<u32> = (0..20)
            .map(|i| {
                let s = Schedule::parse("H * * * *", &format!("org/job-{i}")).unwrap();
                s.next_after(at(2026, 1, 1, 0, 0)).unwrap().minute()
            })
            .collect();
        assert!(
            minutes.len() > 10,
            "20 jobs should not all start at once: {minutes:?}"
        );
        let ranged = Schedule::parse("H(0-29)/10 H(9-17) * * 1-5", "org/app").unwrap();
        let next = ranged.next_after(at(2026, 11, 30, 0, 0)).unwrap();
        assert!(
            next.minute() < 10 && (9..=17).contains(&next.hour()),
            "{next}"
        );
    }

    #[test]
    fn aliases_and_errors() {
        assert!(Schedule::parse("@daily", "x").is_ok());
        assert!(
            Schedule::parse("@midnight", "x")
                .unwrap()
                .next_after(at(2026, 1, 1, 5, 0))
                .unwrap()
                .hour()
                <= 2
        );
        for bad in [
            "* * * *",
            "61 * * * *",
            "a * * * *",
            "*/0 * * * *",
            "@often",
            "H(5-1) * * * *",
        ] {
            assert!(Schedule::parse(bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn day_of_month_and_week_combine_with_or() {
        // The 13th, or any Friday.
        let s = Schedule::parse("0 0 13 * 5", "x").unwrap();
        assert_eq!(
            s.next_after(at(2026, 11, 1, 0, 0)),
            Some(at(2026, 11, 6, 0, 0))
        );
        assert_eq!(
            s.next_after(at(2026, 11, 11, 0, 0)),
            Some(at(2026, 11, 13, 0, 0))
        );
    }
}
