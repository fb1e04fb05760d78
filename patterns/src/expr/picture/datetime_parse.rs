//! `$toMillis(text, picture)`: matches the text against a date/time picture (case-insensitively,
//! backtracking like a regular expression), then assembles an instant from the captured
//! components, defaulting the missing ones the way JSONata does. Also plain ISO 8601 parsing.

use std::collections::HashSet;
use std::sync::OnceLock;

use super::calendar::{days_from_civil, Fields, DAYS, MILLIS_PER_DAY, MONTHS};
use super::datetime_picture::{analyse, Part, Presentation};
use super::integer::{is_ordinal_suffix, IntegerPicture, Primary};
use super::{roman, words, PictureError};

/// Parsed values beyond this magnitude cannot make a representable instant.
const MAX_COMPONENT: f64 = 1e15;

fn error(code: &'static str, message: impl Into<String>) -> PictureError {
    PictureError {
        code,
        message: message.into(),
    }
}

/// What one piece of the picture accepts.
enum Matcher<'a> {
    Literal(Vec<char>),
    Number {
        component: char,
        picture: &'a IntegerPicture,
        width: Option<usize>,
    },
    Fraction,
    Zone {
        component: char,
    },
    Names {
        component: char,
        names: Vec<(Vec<char>, i64)>,
    },
    /// Calendar or era names: letters, ignored.
    Text,
}

fn same_letter(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

/// True when `input[pos..]` starts with `word`, ignoring case.
fn starts_with_ci(input: &[char], pos: usize, word: &[char]) -> bool {
    input
        .get(pos..pos + word.len())
        .is_some_and(|s| s.iter().zip(word).all(|(a, b)| same_letter(*a, *b)))
}

fn run_end(input: &[char], pos: usize, accept: impl Fn(char) -> bool) -> usize {
    pos + input
        .get(pos..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| accept(**c))
        .count()
}

/// Every end of a non-empty run of accepted characters, longest first.
fn run_ends(input: &[char], pos: usize, accept: impl Fn(char) -> bool) -> Vec<usize> {
    (pos + 1..=run_end(input, pos, accept)).rev().collect()
}

fn names_for(component: char, max_width: Option<usize>) -> Option<Vec<(Vec<char>, i64)>> {
    let table: &[&str] = match component {
        'M' | 'x' => &MONTHS,
        'F' => &DAYS,
        'P' => &["am", "pm"],
        _ => return None,
    };
    let mut names = Vec::new();
    for (i, name) in table.iter().enumerate() {
        let chars: Vec<char> = name.chars().collect();
        if let Some(max) = max_width.filter(|m| *m < chars.len()) {
            names.push((chars[..max].to_vec(), i as i64 + 1));
        }
        names.push((chars, i as i64 + 1));
    }
    if component == 'P' {
        for entry in &mut names {
            entry.1 -= 1;
        }
    }
    Some(names)
}

fn matchers(parts: &[Part]) -> Result<Vec<Matcher<'_>>, PictureError> {
    let no_names = |c: char| {
        error(
            "D3133",
            format!("The '{c}' date/time component cannot be parsed as a name"),
        )
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let marker = match part {
            Part::Literal(text) => {
                out.push(Matcher::Literal(text.chars().collect()));
                continue;
            }
            Part::Marker(marker) => marker,
        };
        let component = marker.component;
        out.push(match (&marker.presentation, component) {
            (_, 'C' | 'E') => Matcher::Text,
            (Presentation::Names(_), c) | (Presentation::Number(_), c @ 'P') => Matcher::Names {
                component: c,
                names: names_for(c, marker.max_width).ok_or_else(|| no_names(c))?,
            },
            (Presentation::Number(_), 'Z' | 'z') => Matcher::Zone { component },
            (Presentation::Number(_), 'f') => Matcher::Fraction,
            (Presentation::Number(picture), _) => Matcher::Number {
                component,
                picture,
                width: marker.parse_width,
            },
        });
    }
    Ok(out)
}

fn number_ends(
    picture: &IntegerPicture,
    width: Option<usize>,
    input: &[char],
    pos: usize,
) -> Vec<usize> {
    match &picture.primary {
        Primary::Letters { .. } => run_ends(input, pos, |c| c.is_ascii_alphabetic()),
        Primary::Roman { .. } => run_ends(input, pos, roman::is_numeral),
        Primary::Words(_) => word_ends(input, pos),
        Primary::Digits(d) => {
            let is_digit = |c: char| d.digit_value(c).is_some();
            let mut ends = match width {
                Some(w) => {
                    let fits = input
                        .get(pos..pos + w)
                        .is_some_and(|s| s.iter().all(|c| is_digit(*c)));
                    if fits {
                        vec![pos + w]
                    } else {
                        Vec::new()
                    }
                }
                None if !input.get(pos).is_some_and(|c| is_digit(*c)) => Vec::new(),
                None => {
                    let end = run_end(input, pos, |c| is_digit(c) || d.is_separator(c));
                    (pos + 1..=end)
                        .rev()
                        .filter(|e| input.get(e - 1).is_some_and(|c| is_digit(*c)))
                        .collect()
                }
            };
            if picture.ordinal {
                ends = ends
                    .into_iter()
                    .filter(|e| {
                        input
                            .get(*e..e + 2)
                            .is_some_and(|s| is_ordinal_suffix(&s.iter().collect::<String>()))
                    })
                    .map(|e| e + 2)
                    .collect();
            }
            ends
        }
    }
}

/// Ends of runs of number words, `and`, spaces, commas and hyphens, longest first.
fn word_ends(input: &[char], pos: usize) -> Vec<usize> {
    static VOCABULARY: OnceLock<Vec<Vec<char>>> = OnceLock::new();
    let vocabulary =
        VOCABULARY.get_or_init(|| words::vocabulary().map(|w| w.chars().collect()).collect());
    let mut reached = vec![false; input.len() + 1];
    let mut ends = Vec::new();
    let mut queue = vec![pos];
    while let Some(p) = queue.pop() {
        let mut step = |end: usize| {
            if end > pos && !reached[end] {
                reached[end] = true;
                ends.push(end);
                queue.push(end);
            }
        };
        match input.get(p) {
            Some(c) if c.is_whitespace() || *c == ',' || *c == '-' => step(p + 1),
            Some(_) => {
                for word in vocabulary {
                    if starts_with_ci(input, p, word) {
                        step(p + word.len());
                    }
                }
            }
            None => {}
        }
    }
    ends.sort_unstable_by(|a, b| b.cmp(a));
    ends
}

fn zone_ends(input: &[char], pos: usize) -> Vec<usize> {
    let gmt: Vec<char> = "GMT".chars().collect();
    let start = if starts_with_ci(input, pos, &gmt) {
        pos + 3
    } else {
        pos
    };
    if start == pos && input.get(pos).is_some_and(|c| same_letter(*c, 'Z')) {
        return vec![pos + 1];
    }
    if !input.get(start).is_some_and(|c| *c == '+' || *c == '-') {
        return Vec::new();
    }
    let hours_end = run_end(input, start + 1, |c| c.is_ascii_digit());
    if hours_end == start + 1 {
        return Vec::new();
    }
    let mut ends = Vec::new();
    if input.get(hours_end) == Some(&':') {
        let minutes_end = run_end(input, hours_end + 1, |c| c.is_ascii_digit());
        if minutes_end > hours_end + 1 {
            ends.push(minutes_end);
        }
    }
    ends.push(hours_end);
    ends
}

fn candidates(m: &Matcher<'_>, input: &[char], pos: usize) -> Vec<usize> {
    match m {
        Matcher::Literal(text) => {
            if starts_with_ci(input, pos, text) {
                vec![pos + text.len()]
            } else {
                Vec::new()
            }
        }
        Matcher::Number { picture, width, .. } => number_ends(picture, *width, input, pos),
        Matcher::Fraction => run_ends(input, pos, |c| c.is_ascii_digit()),
        Matcher::Zone { .. } => zone_ends(input, pos),
        Matcher::Names { names, .. } => {
            let mut ends: Vec<usize> = names
                .iter()
                .filter(|(name, _)| starts_with_ci(input, pos, name))
                .map(|(name, _)| pos + name.len())
                .collect();
            ends.sort_unstable_by(|a, b| b.cmp(a));
            ends.dedup();
            ends
        }
        Matcher::Text => run_ends(input, pos, char::is_alphabetic),
    }
}

/// The span each matcher covers in the first (greedy, backtracking) full match.
fn find_match(matchers: &[Matcher<'_>], input: &[char]) -> Option<Vec<(usize, usize)>> {
    struct Frame {
        start: usize,
        ends: Vec<usize>,
        next: usize,
    }
    let Some(first) = matchers.first() else {
        return input.is_empty().then(Vec::new);
    };
    let mut failed: HashSet<(usize, usize)> = HashSet::new();
    let mut stack = vec![Frame {
        start: 0,
        ends: candidates(first, input, 0),
        next: 0,
    }];
    loop {
        let depth = stack.len();
        let frame = stack.last_mut()?;
        let Some(&end) = frame.ends.get(frame.next) else {
            failed.insert((depth - 1, frame.start));
            stack.pop();
            continue;
        };
        frame.next += 1;
        match matchers.get(depth) {
            None if end == input.len() => {
                return Some(
                    stack
                        .iter()
                        .map(|f| (f.start, f.ends[f.next - 1]))
                        .collect(),
                );
            }
            None => {}
            Some(_) if failed.contains(&(depth, end)) => {}
            Some(next) => stack.push(Frame {
                start: end,
                ends: candidates(next, input, end),
                next: 0,
            }),
        }
    }
}

/// Captured component values, indexed by component letter.
#[derive(Default)]
struct Components {
    values: Vec<(char, i64)>,
}

impl Components {
    fn get(&self, c: char) -> Option<i64> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| *v)
    }
    fn set(&mut self, c: char, v: i64) {
        self.values.push((c, v));
    }
    fn has(&self, c: char) -> bool {
        self.get(c).is_some()
    }
}

/// Converts a parsed number to a component value; `Err(())` when it is out of range.
fn to_component(value: Option<f64>) -> Result<Option<i64>, ()> {
    match value {
        Some(v) if v.is_finite() && v.abs() <= MAX_COMPONENT => Ok(Some(v as i64)),
        Some(_) => Err(()),
        None => Ok(None),
    }
}

fn zone_minutes(text: &str) -> Option<i64> {
    let body = match text.get(..3) {
        Some(gmt) if gmt.eq_ignore_ascii_case("gmt") => &text[3..],
        _ => text,
    };
    if body.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = if body.starts_with('-') { -1 } else { 1 };
    let body = body.get(1..)?;
    let number = |digits: &str| -> Option<i64> {
        (digits.len() <= 6).then_some(())?;
        digits.parse().ok()
    };
    let (hours, minutes) = match body.split_once(':') {
        Some((h, m)) => (number(h)?, number(m)?),
        None if body.len() <= 2 => (number(body)?, 0),
        None => {
            let n = number(body)?;
            (n / 100, n % 100)
        }
    };
    Some(sign * (hours * 60 + minutes))
}

/// `$toMillis(text, picture)` with `now_millis` supplying unspecified leading components.
pub(crate) fn parse_datetime(
    text: &str,
    picture: &str,
    now_millis: i64,
) -> Result<Option<i64>, PictureError> {
    let parts = analyse(picture)?;
    let matchers = matchers(&parts)?;
    let input: Vec<char> = text.chars().collect();
    let Some(spans) = find_match(&matchers, &input) else {
        return Ok(None);
    };
    let mut components = Components::default();
    for (m, (start, end)) in matchers.iter().zip(spans) {
        let captured: String = input.get(start..end).unwrap_or_default().iter().collect();
        let (component, value) = match m {
            Matcher::Literal(_) | Matcher::Text => continue,
            Matcher::Number {
                component, picture, ..
            } => (*component, picture.parse(&captured)),
            Matcher::Fraction => {
                let digits: String = captured.chars().chain("00".chars()).take(3).collect();
                ('f', digits.parse::<f64>().ok())
            }
            Matcher::Zone { component } => (*component, zone_minutes(&captured).map(|v| v as f64)),
            Matcher::Names { component, names } => {
                let chars: Vec<char> = captured.chars().collect();
                let value = names
                    .iter()
                    .find(|(name, _)| name.len() == chars.len() && starts_with_ci(&chars, 0, name))
                    .map(|(_, v)| *v as f64);
                (*component, value)
            }
        };
        match to_component(value) {
            Ok(Some(v)) => components.set(component, v),
            Ok(None) => {}
            Err(()) => return Ok(None),
        }
    }
    if components.values.is_empty() {
        return Ok(None);
    }
    assemble(components, now_millis)
}

/// True when the present components among `all` are a non-empty subset of `allowed`.
fn only(c: &Components, all: &str, allowed: &str) -> bool {
    let present: Vec<char> = all.chars().filter(|k| c.has(*k)).collect();
    !present.is_empty() && present.iter().all(|k| allowed.contains(*k))
}

fn now_value(component: char, now: &Fields) -> i64 {
    match component {
        'Y' => now.year,
        'M' => i64::from(now.month),
        'D' => i64::from(now.day),
        'd' => now.day_of_year(),
        'H' => now.hour,
        'h' => match now.hour % 12 {
            0 => 12,
            h => h,
        },
        'P' => i64::from(now.hour >= 12),
        'm' => now.minute,
        's' => now.second,
        'f' => now.millis,
        'X' => now.iso_week_year(),
        'x' => i64::from(now.week_month()),
        'W' => now.iso_week(),
        'w' => now.week_of_month(),
        _ => now.weekday(),
    }
}

fn underspecified() -> PictureError {
    error(
        "D3136",
        "The date/time picture string is missing specifiers required to parse the timestamp",
    )
}

/// Builds the instant: one date form ({Y,M,D} or {Y,d}) and one time form ({H,m,s,f} or
/// {P,h,m,s,f}); components above the first given one come from `now`, those below the last
/// given one default to their minimum, and a gap in between is error D3136.
fn assemble(mut c: Components, now_millis: i64) -> Result<Option<i64>, PictureError> {
    const DATE: &str = "YXMxWwdD";
    const TIME: &str = "PHhmsf";
    let date_a = only(&c, DATE, "YMD");
    let date_b = !date_a && only(&c, DATE, "Yd");
    let date_c = only(&c, DATE, "Xxw");
    let date_d = !date_c && only(&c, DATE, "XW");
    let time_b = !only(&c, TIME, "Hmsf") && only(&c, TIME, "Phmsf");
    let date_order = if date_b {
        "Yd"
    } else if date_c {
        "XxwF"
    } else if date_d {
        "XWF"
    } else {
        "YMD"
    };
    let time_order = if time_b { "Phmsf" } else { "Hmsf" };
    let now = Fields::from_millis(now_millis);
    let (mut started, mut ended) = (false, false);
    for k in date_order.chars().chain(time_order.chars()) {
        if c.has(k) {
            started = true;
            if ended {
                return Err(underspecified());
            }
        } else if started {
            c.set(k, i64::from("MDd".contains(k)));
            ended = true;
        } else {
            c.set(k, now_value(k, &now));
        }
    }
    if date_c || date_d {
        // Week-based dates are not supported for parsing (as in JSONata).
        return Err(underspecified());
    }
    let get = |k: char| c.get(k).unwrap_or(0);
    let days = if date_b {
        days_from_civil(get('Y'), 1, 1) + get('d') - 1
    } else {
        let month_index = (get('M') - 1).max(0);
        let year = get('Y') + month_index.div_euclid(12);
        let month = (month_index.rem_euclid(12) + 1) as u32;
        days_from_civil(year, month, get('D'))
    };
    let hour = if time_b {
        let h = get('h');
        (if h == 12 { 0 } else { h }) + if get('P') == 1 { 12 } else { 0 }
    } else {
        get('H')
    };
    let zone = c.get('Z').or_else(|| c.get('z')).unwrap_or(0);
    let millis = i128::from(days) * i128::from(MILLIS_PER_DAY)
        + i128::from(hour) * 3_600_000
        + i128::from(get('m')) * 60_000
        + i128::from(get('s')) * 1000
        + i128::from(get('f'))
        - i128::from(zone) * 60_000;
    Ok(i64::try_from(millis).ok())
}

/// Parses an ISO 8601 timestamp (`2017-10-30`, `2018-02-01T09:42:13.123+0000`, …) as JSONata
/// accepts it; a timestamp without a zone is UTC. Error D3110 otherwise.
pub(crate) fn parse_iso8601(text: &str) -> Result<i64, PictureError> {
    iso8601(text.as_bytes()).ok_or_else(|| {
        error(
            "D3110",
            format!("The argument of the toMillis function must be an ISO 8601 formatted timestamp. Given {text}"),
        )
    })
}

fn iso8601(s: &[u8]) -> Option<i64> {
    let mut pos = 0;
    let number = |pos: &mut usize, len: usize| -> Option<i64> {
        let digits = s.get(*pos..*pos + len)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *pos += len;
        digits
            .iter()
            .try_fold(0i64, |acc, d| Some(acc * 10 + i64::from(d - b'0')))
    };
    let year = number(&mut pos, 4)?;
    let (mut month, mut day) = (1, 1);
    if s.get(pos) == Some(&b'-') {
        pos += 1;
        month = number(&mut pos, 2)?;
        if s.get(pos) == Some(&b'-') {
            pos += 1;
            day = number(&mut pos, 2)?;
        }
    }
    let (mut hour, mut minute, mut second, mut millis, mut zone) = (0, 0, 0, 0, 0);
    if s.get(pos) == Some(&b'T') {
        pos += 1;
        hour = number(&mut pos, 2)?;
        (s.get(pos) == Some(&b':')).then_some(())?;
        pos += 1;
        minute = number(&mut pos, 2)?;
        (s.get(pos) == Some(&b':')).then_some(())?;
        pos += 1;
        second = number(&mut pos, 2)?;
        if s.get(pos) == Some(&b'.') {
            pos += 1;
            let count = s
                .get(pos..)?
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            (count > 0).then_some(())?;
            let digits: String = s[pos..pos + count]
                .iter()
                .map(|b| char::from(*b))
                .chain("00".chars())
                .take(3)
                .collect();
            millis = digits.parse().ok()?;
            pos += count;
        }
        match s.get(pos) {
            Some(b'Z') => pos += 1,
            Some(sign @ (b'+' | b'-')) => {
                let sign = if *sign == b'-' { -1 } else { 1 };
                pos += 1;
                let h = number(&mut pos, 2)?;
                if s.get(pos) == Some(&b':') {
                    pos += 1;
                }
                let m = number(&mut pos, 2)?;
                (h <= 23 && m <= 59).then_some(())?;
                zone = sign * (h * 60 + m);
            }
            _ => {}
        }
    }
    let valid_date = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    let valid_time = (hour < 24 && minute < 60 && second < 60)
        || (hour == 24 && minute == 0 && second == 0 && millis == 0);
    (pos == s.len() && valid_date && valid_time).then_some(())?;
    let days = days_from_civil(year, month as u32, day);
    Some(days * MILLIS_PER_DAY + ((hour * 60 + minute - zone) * 60 + second) * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let next = if month == 12 {
        days_from_civil(year + 1, 1, 1)
    } else {
        days_from_civil(year, month as u32 + 1, 1)
    };
    next - days_from_civil(year, month as u32, 1)
}
