//! Quota windows: fixed UTC minutes for `rpm`/`tpm`, the UTC calendar day and month for
//! budgets (docs/ROUTING.md "Quotas" says why).

use time::{Date, Duration, Month, OffsetDateTime, Time};

/// How long a quota's count lasts before it starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    /// The UTC minute: 12:00:00.000 to 12:00:59.999.
    Minute,
    /// The UTC calendar day.
    Day,
    /// The UTC calendar month.
    Month,
}

const MINUTE_MS: u64 = 60_000;

fn epoch_ms(date: Date) -> u64 {
    let at = date.with_time(Time::MIDNIGHT).assume_utc();
    (at.unix_timestamp().max(0) as u64) * 1000
}

impl Window {
    /// The wire name: `minute`, `day`, `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Day => "day",
            Window::Month => "month",
        }
    }

    /// The window holding `now_ms` (epoch milliseconds): its start and its end (exclusive).
    pub fn bounds(self, now_ms: u64) -> (u64, u64) {
        if self == Window::Minute {
            let start = now_ms - now_ms % MINUTE_MS;
            return (start, start + MINUTE_MS);
        }
        let seconds = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        let date = OffsetDateTime::from_unix_timestamp(seconds)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .date();
        match self {
            Window::Day => {
                let next = date.checked_add(Duration::DAY).unwrap_or(date);
                (epoch_ms(date), epoch_ms(next))
            }
            _ => {
                let first = date.replace_day(1).unwrap_or(date);
                let (year, month) = match first.month() {
                    Month::December => (first.year() + 1, Month::January),
                    m => (first.year(), m.next()),
                };
                let next = Date::from_calendar_date(year, month, 1).unwrap_or(first);
                (epoch_ms(first), epoch_ms(next))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-31T23:59:30.500Z
    const NEW_YEARS_EVE: u64 = 1_798_761_570_500;

    #[test]
    fn minutes_are_fixed_and_utc() {
        assert_eq!(
            Window::Minute.bounds(NEW_YEARS_EVE),
            (1_798_761_540_000, 1_798_761_600_000)
        );
    }

    #[test]
    fn days_and_months_follow_the_utc_calendar() {
        // 2026-12-31T00:00Z to 2027-01-01T00:00Z
        assert_eq!(
            Window::Day.bounds(NEW_YEARS_EVE),
            (1_798_675_200_000, 1_798_761_600_000)
        );
        // 2026-12-01T00:00Z to 2027-01-01T00:00Z
        assert_eq!(
            Window::Month.bounds(NEW_YEARS_EVE),
            (1_796_083_200_000, 1_798_761_600_000)
        );
        // February of a leap year: 2028-02-10 → 2028-02-01 .. 2028-03-01 (29 days).
        let (start, end) = Window::Month.bounds(1_833_753_600_000);
        assert_eq!(end - start, 29 * 86_400_000);
    }
}
