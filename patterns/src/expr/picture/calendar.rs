//! Proleptic Gregorian calendar arithmetic on epoch days and milliseconds (UTC, no leap
//! seconds): civil dates, ISO weekdays, ISO week-of-year and the JSONata week-of-month.

/// Milliseconds in a day.
pub(crate) const MILLIS_PER_DAY: i64 = 86_400_000;

/// English month names, January first.
pub(crate) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// English day names, Monday (ISO day 1) first.
pub(crate) const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Days since 1970-01-01 of `year`-`month`-`day` (month 1–12; day may overflow the month).
pub(crate) fn days_from_civil(year: i64, month: u32, day: i64) -> i64 {
    let month = i64::from(month.clamp(1, 12));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + (day - 1)
}

/// `(year, month 1–12, day 1–31)` of a day number.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// ISO day of the week, 1 = Monday … 7 = Sunday.
pub(crate) fn iso_weekday(days: i64) -> i64 {
    (days + 3).rem_euclid(7) + 1
}

/// The broken-down UTC fields of an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields {
    /// Day number since 1970-01-01.
    pub days: i64,
    /// Calendar year.
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: i64,
    /// Minute, 0–59.
    pub minute: i64,
    /// Second, 0–59.
    pub second: i64,
    /// Millisecond, 0–999.
    pub millis: i64,
}

impl Fields {
    /// The fields of `millis` since the epoch.
    pub fn from_millis(millis: i64) -> Self {
        let days = millis.div_euclid(MILLIS_PER_DAY);
        let time = millis.rem_euclid(MILLIS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Fields {
            days,
            year,
            month,
            day,
            hour: time / 3_600_000,
            minute: time / 60_000 % 60,
            second: time / 1000 % 60,
            millis: time % 1000,
        }
    }

    /// Day of the year, 1–366.
    pub fn day_of_year(&self) -> i64 {
        self.days - days_from_civil(self.year, 1, 1) + 1
    }

    /// ISO day of the week, 1 = Monday … 7 = Sunday.
    pub fn weekday(&self) -> i64 {
        iso_weekday(self.days)
    }

    /// ISO 8601 week of the year (1–53).
    pub fn iso_week(&self) -> i64 {
        let week = week_number(first_week_start(self.year, 1), self.days);
        if week > 52 && self.days >= first_week_start(self.year + 1, 1) {
            1
        } else if week < 1 {
            week_number(first_week_start(self.year - 1, 1), self.days)
        } else {
            week
        }
    }

    /// The ISO 8601 week-numbering year (`[X]`).
    pub fn iso_week_year(&self) -> i64 {
        if self.days < first_week_start(self.year, 1) {
            self.year - 1
        } else if self.days >= first_week_start(self.year + 1, 1) {
            self.year + 1
        } else {
            self.year
        }
    }

    /// Week of the month (`[w]`), weeks starting on Monday, week 1 holding the first Thursday.
    pub fn week_of_month(&self) -> i64 {
        let (year, month) = (self.year, self.month);
        let week = week_number(first_week_start(year, month), self.days);
        let (ny, nm) = next_month(year, month);
        let (py, pm) = previous_month(year, month);
        if week > 4 && self.days >= first_week_start(ny, nm) {
            1
        } else if week < 1 {
            week_number(first_week_start(py, pm), self.days)
        } else {
            week
        }
    }

    /// The month (1–12) that the week of the month belongs to (`[x]`).
    pub fn week_month(&self) -> u32 {
        let (ny, nm) = next_month(self.year, self.month);
        if self.days < first_week_start(self.year, self.month) {
            previous_month(self.year, self.month).1
        } else if self.days >= first_week_start(ny, nm) {
            nm
        } else {
            self.month
        }
    }
}

fn next_month(year: i64, month: u32) -> (i64, u32) {
    if month >= 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    }
}

fn previous_month(year: i64, month: u32) -> (i64, u32) {
    if month <= 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    }
}

/// Day number of the Monday starting week 1 of a month (the week holding its first Thursday).
fn first_week_start(year: i64, month: u32) -> i64 {
    let first = days_from_civil(year, month, 1);
    let weekday = iso_weekday(first);
    if weekday > 4 {
        first + 8 - weekday
    } else {
        first - (weekday - 1)
    }
}

fn week_number(start: i64, day: i64) -> i64 {
    (day - start).div_euclid(7) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(days_from_civil(2018, 2, 29), days_from_civil(2018, 3, 1));
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, i64::from(d)), days);
        }
        let _ = Fields::from_millis(i64::MAX);
        let _ = Fields::from_millis(i64::MIN);
    }

    #[test]
    fn weeks() {
        let at = |y, m, d| Fields::from_millis(days_from_civil(y, m, d) * MILLIS_PER_DAY);
        assert_eq!(at(1970, 1, 1).weekday(), 4);
        let f = at(2005, 1, 1);
        assert_eq!(
            (f.iso_week_year(), f.iso_week(), f.weekday()),
            (2004, 53, 6)
        );
        let f = at(2008, 12, 29);
        assert_eq!((f.iso_week_year(), f.iso_week(), f.weekday()), (2009, 1, 1));
        let f = at(2017, 1, 1);
        assert_eq!((f.week_of_month(), f.week_month()), (5, 12));
        assert_eq!(at(2016, 12, 31).day_of_year(), 366);
    }
}
