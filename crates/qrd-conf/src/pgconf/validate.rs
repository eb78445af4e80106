//! Checking a value against a setting's entry in `pg_settings`, with the server's own rules and messages
//! (`parse_and_validate_value`, `parse_int`, `parse_real`, `convert_to_base_unit` in guc.c, `parse_bool` in
//! bool.c; PostgreSQL 12–16 agree). Pure: the caller brings the catalog row.

use serde::{Deserialize, Serialize};

/// `pg_settings.vartype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarType {
    Bool,
    Integer,
    Real,
    String,
    Enum,
}

/// The columns of a `pg_settings` row that decide whether a value is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingInfo {
    pub name: String,
    pub vartype: VarType,
    /// `pg_settings.unit`: `B`, `kB`, `MB`, `8kB` (pages of the server's block size), `ms`, `s`, `min`.
    pub unit: Option<String>,
    pub min_val: Option<String>,
    pub max_val: Option<String>,
    /// `pg_settings.enumvals`. The server also accepts hidden spellings that this list omits; see
    /// [`validate`].
    #[serde(default)]
    pub enumvals: Vec<String>,
    /// `pg_settings.context`: `postmaster`, `sighup`, `user`, …
    pub context: String,
}

/// A valid value in the form the server stores it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Normalized {
    Bool {
        value: bool,
    },
    /// In the setting's base unit (`unit`), as `pg_settings.setting` shows it: `128MB` of `shared_buffers`
    /// is `16384` with unit `8kB`.
    Integer {
        value: i64,
        unit: Option<String>,
    },
    Real {
        value: f64,
        unit: Option<String>,
    },
    String {
        value: String,
    },
    /// The option's name as listed in `enumvals` (hidden aliases mapped to what they stand for).
    Enum {
        value: String,
    },
}

impl Normalized {
    /// The text `pg_settings.setting` would show for this value.
    pub fn setting(&self) -> String {
        match self {
            Normalized::Bool { value } => if *value { "on" } else { "off" }.to_owned(),
            Normalized::Integer { value, .. } => value.to_string(),
            Normalized::Real { value, .. } => format_g(*value),
            Normalized::String { value } | Normalized::Enum { value } => value.clone(),
        }
    }
}

/// A value the server would refuse, with the server's message and hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}{}", hint.as_ref().map(|h| format!("\n\nhint: {h}")).unwrap_or_default())]
pub struct InvalidValue {
    /// The server's message, word for word: `invalid value for parameter "max_connections": "abc"`.
    pub message: String,
    /// The server's HINT, if it gives one: `Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".`
    pub hint: Option<String>,
}

impl InvalidValue {
    fn new(message: String, hint: Option<&str>) -> Self {
        Self { message, hint: hint.map(str::to_owned) }
    }
}

/// A change to this setting takes effect only after a server restart (`pg_settings.context` is
/// `postmaster`); other contexts take a reload or less.
pub fn needs_restart(info: &SettingInfo) -> bool {
    info.context == "postmaster"
}

const MEMORY_HINT: &str = "Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\".";
const TIME_HINT: &str = "Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\".";
const INT_RANGE_HINT: &str = "Value exceeds integer range.";

/// Whether `value` (decoded, as it reaches the server) is valid for the setting, and what it becomes.
///
/// Surprising rules this follows because the server does:
/// - booleans: `on`/`off`, any prefix of `true`, `false`, `yes`, `no` (so `t`, `fa`, `ye`, `n`), `of` for
///   `off`, `1`, `0`, all case-insensitive; `o` alone is refused as ambiguous;
/// - integers are read with C `strtol` base 0, so `0x40` is 64 and **`010` is 8 (octal)**; a fraction or an
///   exponent switches to a float (`1e3`, `1.5`), which is then rounded half to even (`2.5` → 2);
/// - units are case-sensitive (`64mb` is refused), at most 3 letters, may follow a space; a fractional
///   value with a unit is first rounded to the next smaller unit, then to the base unit: `100kB` of 8 kB
///   pages is 12.5 pages and becomes 12;
/// - enums match case-insensitively. `pg_settings.enumvals` omits hidden spellings; the ones handled are
///   `true`/`yes`/`1` and `false`/`no`/`0` wherever `on` and `off` are listed (with `wal_compression`'s `on`
///   meaning `pglz`) and `wal_level`'s `archive`/`hot_standby` (= `replica`). Not handled:
///   `password_encryption = on` on 12–13 (an alias of `md5`, refused from 14), which is reported invalid.
/// - strings are accepted as they are: the server's check hooks (time zones, search paths, …) need a server.
pub fn validate(value: &str, info: &SettingInfo) -> Result<Normalized, InvalidValue> {
    let name = &info.name;
    let invalid =
        |hint: Option<&str>| InvalidValue::new(format!("invalid value for parameter \"{name}\": \"{value}\""), hint);
    let unit_suffix = info.unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
    match info.vartype {
        VarType::Bool => parse_bool(value)
            .map(|value| Normalized::Bool { value })
            .ok_or_else(|| InvalidValue::new(format!("parameter \"{name}\" requires a Boolean value"), None)),
        VarType::Integer => {
            let base = info.unit.as_deref().and_then(BaseUnit::from_pg);
            let v = parse_int(value, base).map_err(invalid)?;
            let min = info.min_val.as_deref().and_then(|m| m.trim().parse::<i64>().ok());
            let max = info.max_val.as_deref().and_then(|m| m.trim().parse::<i64>().ok());
            if let (Some(min), Some(max)) = (min, max)
                && (v < min || v > max)
            {
                return Err(InvalidValue::new(
                    format!("{v}{unit_suffix} is outside the valid range for parameter \"{name}\" ({min} .. {max})"),
                    None,
                ));
            }
            Ok(Normalized::Integer { value: v, unit: info.unit.clone() })
        }
        VarType::Real => {
            let base = info.unit.as_deref().and_then(BaseUnit::from_pg);
            let v = parse_real(value, base).map_err(invalid)?;
            let min = info.min_val.as_deref().and_then(|m| m.trim().parse::<f64>().ok());
            let max = info.max_val.as_deref().and_then(|m| m.trim().parse::<f64>().ok());
            if let (Some(min), Some(max)) = (min, max)
                && (v < min || v > max)
            {
                return Err(InvalidValue::new(
                    format!(
                        "{}{unit_suffix} is outside the valid range for parameter \"{name}\" ({} .. {})",
                        format_g(v),
                        format_g(min),
                        format_g(max)
                    ),
                    None,
                ));
            }
            Ok(Normalized::Real { value: v, unit: info.unit.clone() })
        }
        VarType::String => Ok(Normalized::String { value: value.to_owned() }),
        VarType::Enum => match enum_lookup(value, info) {
            Some(value) => Ok(Normalized::Enum { value }),
            None => {
                let hint = format!("Available values: {}.", info.enumvals.join(", "));
                Err(invalid(Some(&hint)))
            }
        },
    }
}

fn enum_lookup(value: &str, info: &SettingInfo) -> Option<String> {
    if let Some(listed) = info.enumvals.iter().find(|e| e.eq_ignore_ascii_case(value)) {
        return Some(listed.clone());
    }
    let listed = |v: &str| info.enumvals.iter().any(|e| e == v);
    let lower = value.to_ascii_lowercase();
    if listed("on") && listed("off") {
        let on = match lower.as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        };
        if let Some(on) = on {
            // wal_compression (15+) lists `pglz` and keeps `on` as a hidden alias of it.
            let canonical = match (on, info.name.eq_ignore_ascii_case("wal_compression") && listed("pglz")) {
                (true, true) => "pglz",
                (true, false) => "on",
                (false, _) => "off",
            };
            return Some(canonical.to_owned());
        }
    }
    if info.name.eq_ignore_ascii_case("wal_level")
        && listed("replica")
        && matches!(lower.as_str(), "archive" | "hot_standby")
    {
        return Some("replica".to_owned());
    }
    None
}

/// `parse_bool_with_len`: see [`validate`].
pub fn parse_bool(value: &str) -> Option<bool> {
    let lower = value.to_ascii_lowercase();
    let prefix_of = |word: &str| !lower.is_empty() && word.starts_with(lower.as_str());
    match lower.as_bytes().first()? {
        b't' if prefix_of("true") => Some(true),
        b'f' if prefix_of("false") => Some(false),
        b'y' if prefix_of("yes") => Some(true),
        b'n' if prefix_of("no") => Some(false),
        // "o" alone could be on or off: at least two letters are needed.
        b'o' if lower.len() >= 2 && prefix_of("on") => Some(true),
        b'o' if lower.len() >= 2 && prefix_of("off") => Some(false),
        b'1' if lower.len() == 1 => Some(true),
        b'0' if lower.len() == 1 => Some(false),
        _ => None,
    }
}

/// A setting's base unit (`GUC_UNIT_*`), from the `pg_settings.unit` text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum BaseUnit {
    /// Memory, this many bytes per unit (`B` 1, `kB` 1024, `MB`, or `8kB` pages 8192).
    Memory(f64),
    /// Time, this many microseconds per unit (`ms`, `s`, `min`).
    Time(f64),
}

const MEMORY_UNITS: [(&str, f64); 5] = [
    ("TB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("GB", 1024.0 * 1024.0 * 1024.0),
    ("MB", 1024.0 * 1024.0),
    ("kB", 1024.0),
    ("B", 1.0),
];

const TIME_UNITS: [(&str, f64); 6] = [
    ("d", 86_400_000_000.0),
    ("h", 3_600_000_000.0),
    ("min", 60_000_000.0),
    ("s", 1_000_000.0),
    ("ms", 1_000.0),
    ("us", 1.0),
];

impl BaseUnit {
    fn from_pg(unit: &str) -> Option<BaseUnit> {
        if let Some(&(_, size)) = MEMORY_UNITS.iter().find(|(u, _)| *u == unit) {
            return Some(BaseUnit::Memory(size));
        }
        if let Some(&(_, size)) = TIME_UNITS[2..5].iter().find(|(u, _)| *u == unit) {
            return Some(BaseUnit::Time(size));
        }
        // Pages: "8kB" for BLCKSZ 8192 (also XLOG_BLCKSZ for wal_buffers and the like).
        let kb: u32 = unit.strip_suffix("kB")?.parse().ok()?;
        (kb > 0).then(|| BaseUnit::Memory(f64::from(kb) * 1024.0))
    }

    fn table(self) -> (&'static [(&'static str, f64)], f64) {
        match self {
            BaseUnit::Memory(size) => (&MEMORY_UNITS, size),
            BaseUnit::Time(size) => (&TIME_UNITS, size),
        }
    }

    fn hint(self) -> &'static str {
        match self {
            BaseUnit::Memory(_) => MEMORY_HINT,
            BaseUnit::Time(_) => TIME_HINT,
        }
    }

    /// The factor from `size` units to base units, computed like the server's tables: a whole number
    /// when the unit is larger, else `1.0 / (base / unit)`.
    fn multiplier(base: f64, size: f64) -> f64 {
        if size >= base { size / base } else { 1.0 / (base / size) }
    }
}

/// `convert_to_base_unit`: `rest` is the text after the number and any blanks.
fn convert_to_base_unit(value: f64, rest: &str, base: BaseUnit) -> Option<f64> {
    let unit_len = rest.bytes().take_while(|b| !is_c_space(*b)).count();
    // MAX_UNIT_LEN is 3: a longer word fails like garbage after the unit does.
    if unit_len > 3 || !rest[unit_len..].bytes().all(is_c_space) {
        return None;
    }
    let unit = &rest[..unit_len];
    let (table, base_size) = base.table();
    let i = table.iter().position(|(u, _)| *u == unit)?;
    let mut converted = value * BaseUnit::multiplier(base_size, table[i].1);
    // "30.1GB" is first rounded to a whole number of the next smaller unit (MB), if there is one.
    if let Some(&(_, smaller)) = table.get(i + 1) {
        let m = BaseUnit::multiplier(base_size, smaller);
        converted = (converted / m).round_ties_even() * m;
    }
    Some(converted)
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Either a unit (or garbage after the number) error with the unit hint, or a plain syntax error.
type NumError = Option<&'static str>;

fn apply_unit(value: f64, rest: &str, base: Option<BaseUnit>) -> Result<f64, NumError> {
    let rest = rest.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
    if rest.is_empty() {
        return Ok(value);
    }
    let base = base.ok_or(None)?;
    convert_to_base_unit(value, rest, base).ok_or(Some(base.hint()))
}

/// `parse_int`: an `int` in the setting's base unit.
fn parse_int(value: &str, base: Option<BaseUnit>) -> Result<i64, NumError> {
    let (int, mut end, mut overflow) = strtol(value).unwrap_or((0, 0, false));
    let mut v = int as f64;
    // Like the server: re-read as a float only when the integer stops at `.`, `e` or `E`, or overflows
    // (`inf` is therefore a plain syntax error for an integer setting).
    if overflow || matches!(value.as_bytes().get(end), Some(b'.' | b'e' | b'E')) {
        (v, end, overflow) = strtod(value).unwrap_or((0.0, 0, false));
    }
    if end == 0 || overflow || v.is_nan() {
        return Err(None);
    }
    let v = apply_unit(v, &value[end..], base)?.round_ties_even();
    if v > f64::from(i32::MAX) || v < f64::from(i32::MIN) {
        return Err(Some(INT_RANGE_HINT));
    }
    Ok(v as i64)
}

/// `parse_real`: a `double` in the setting's base unit.
fn parse_real(value: &str, base: Option<BaseUnit>) -> Result<f64, NumError> {
    let (v, end, overflow) = strtod(value).ok_or(None)?;
    if overflow || v.is_nan() {
        return Err(None);
    }
    apply_unit(v, &value[end..], base)
}

/// C `strtol(s, &end, 0)` with a 64-bit `long`: blanks, sign, then `0x` hex, `0` octal or decimal.
/// Returns the value, the end offset and whether it overflowed; `None` when no digits were read.
fn strtol(s: &str) -> Option<(i64, usize, bool)> {
    let b = s.as_bytes();
    let mut i = b.iter().take_while(|c| is_c_space(**c)).count();
    let negative = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let (radix, start) = if b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        (16, i + 2)
    } else if b.get(i) == Some(&b'0') {
        (8, i)
    } else {
        (10, i)
    };
    let digits = b[start..].iter().take_while(|c| (**c as char).is_digit(radix)).count();
    if digits == 0 {
        return None;
    }
    let mut acc: i128 = 0;
    let mut overflow = false;
    for &c in &b[start..start + digits] {
        acc = acc * i128::from(radix) + i128::from((c as char).to_digit(radix).unwrap_or(0));
        if acc > i128::from(i64::MAX) + 1 {
            overflow = true;
            acc = i128::from(i64::MAX) + 1;
        }
    }
    let signed = if negative { -acc } else { acc };
    if signed > i128::from(i64::MAX) {
        overflow = true;
    }
    let clamped = signed.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    Some((clamped, start + digits, overflow))
}

/// C `strtod`: blanks, sign, then `inf`/`infinity`/`nan`, a hex float (`0x1.8p3`) or a decimal float.
/// Returns the value, the end offset and whether it over- or underflowed (`ERANGE`).
fn strtod(s: &str) -> Option<(f64, usize, bool)> {
    let b = s.as_bytes();
    let lower = s.to_ascii_lowercase();
    let mut i = b.iter().take_while(|c| is_c_space(**c)).count();
    let sign = if b.get(i) == Some(&b'-') { -1.0 } else { 1.0 };
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let rest = &lower[i..];
    if rest.starts_with("infinity") {
        return Some((sign * f64::INFINITY, i + 8, false));
    }
    if rest.starts_with("inf") {
        return Some((sign * f64::INFINITY, i + 3, false));
    }
    if rest.starts_with("nan") {
        let mut end = i + 3;
        if b.get(end) == Some(&b'(')
            && let Some(close) = b[end..].iter().position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'('))
            && b[end + close] == b')'
        {
            end += close + 1;
        }
        return Some((f64::NAN, end, false));
    }
    let digits_at = |j: usize, hex: bool| {
        b[j..].iter().take_while(|c| if hex { c.is_ascii_hexdigit() } else { c.is_ascii_digit() }).count()
    };
    let hex = rest.starts_with("0x") && {
        let j = i + 2;
        let int = digits_at(j, true);
        int > 0 || (b.get(j + int) == Some(&b'.') && digits_at(j + int + 1, true) > 0)
    };
    if hex {
        let mut j = i + 2;
        let mut mantissa = 0.0f64;
        let mut scale = 0i32;
        let int = digits_at(j, true);
        for &c in &b[j..j + int] {
            mantissa = mantissa * 16.0 + f64::from((c as char).to_digit(16).unwrap_or(0));
        }
        j += int;
        if b.get(j) == Some(&b'.') {
            let frac = digits_at(j + 1, true);
            for &c in &b[j + 1..j + 1 + frac] {
                mantissa = mantissa * 16.0 + f64::from((c as char).to_digit(16).unwrap_or(0));
                scale -= 4;
            }
            j += 1 + frac;
        }
        if matches!(b.get(j), Some(b'p' | b'P')) {
            let mut k = j + 1;
            let neg = b.get(k) == Some(&b'-');
            if matches!(b.get(k), Some(b'-' | b'+')) {
                k += 1;
            }
            let exp_digits = digits_at(k, false);
            if exp_digits > 0 {
                let exp: i32 = s[k..k + exp_digits].parse().unwrap_or(i32::MAX / 2);
                scale = scale.saturating_add(if neg { -exp } else { exp });
                j = k + exp_digits;
            }
        }
        let v = sign * mantissa * 2f64.powi(scale);
        let range = v.is_infinite() || (v == 0.0 && mantissa != 0.0) || v.is_subnormal();
        return Some((v, j, range));
    }
    let int = digits_at(i, false);
    let mut j = i + int;
    let mut frac = 0;
    if b.get(j) == Some(&b'.') {
        frac = digits_at(j + 1, false);
        j += 1 + frac;
    }
    if int == 0 && frac == 0 {
        return None;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(b.get(k), Some(b'-' | b'+')) {
            k += 1;
        }
        let exp_digits = digits_at(k, false);
        if exp_digits > 0 {
            j = k + exp_digits;
        }
    }
    let literal = &s[i..j];
    let magnitude: f64 = literal.parse().ok()?;
    let nonzero_digits = literal.bytes().take_while(|c| !matches!(c, b'e' | b'E')).any(|c| matches!(c, b'1'..=b'9'));
    let range = magnitude.is_infinite() || (magnitude == 0.0 && nonzero_digits) || magnitude.is_subnormal();
    Some((sign * magnitude, j, range))
}

/// C `printf("%g")` as the server's own `snprintf` does it (6 significant digits, `Infinity`, `NaN`).
pub fn format_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s.to_owned() }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = usize::try_from(5 - exp).unwrap_or(0);
        trim(&format!("{v:.decimals$}"))
    }
}
