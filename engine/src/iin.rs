//! IIN (individual identification number) checks: 12 digits, birth date YYMMDD, century
//! and sex digit, check digit (domain.md section 3).

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// A checked IIN: 12 ASCII digits whose check digit is valid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Iin(String);

/// Why a typed IIN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IinError {
    #[error("must be exactly 12 digits")]
    Format,
    #[error("digit 7 (century and sex) must be 1 to 6")]
    Century,
    #[error("digits 1-6 are not a valid date YYMMDD")]
    BirthDate,
    #[error("check digit does not match")]
    CheckDigit,
    #[error("birth date in the IIN ({iin_date}) does not agree with the birth date {given}")]
    BirthDateMismatch { iin_date: Date, given: Date },
}

fn digits(s: &str) -> Result<[u8; 12], IinError> {
    let b = s.as_bytes();
    if b.len() != 12 || !b.iter().all(u8::is_ascii_digit) {
        return Err(IinError::Format);
    }
    let mut d = [0u8; 12];
    for (i, c) in b.iter().enumerate() {
        d[i] = c - b'0';
    }
    Ok(d)
}

/// The check digit of the first 11 digits, or `None` if the number can have none.
pub fn check_digit(d: &[u8]) -> Option<u8> {
    debug_assert!(d.len() >= 11);
    let sum1: u32 = (0..11).map(|i| (i as u32 + 1) * d[i] as u32).sum();
    let c = sum1 % 11;
    if c != 10 {
        return Some(c as u8);
    }
    const W2: [u32; 11] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];
    let sum2: u32 = (0..11).map(|i| W2[i] * d[i] as u32).sum();
    let c = sum2 % 11;
    (c != 10).then_some(c as u8)
}

impl Iin {
    /// Parses and checks a typed IIN (format, century digit, birth date, check digit).
    pub fn parse(s: &str) -> Result<Iin, IinError> {
        let d = digits(s.trim())?;
        Self::birth_date_of(&d)?;
        if check_digit(&d) != Some(d[11]) {
            return Err(IinError::CheckDigit);
        }
        Ok(Iin(s.trim().to_string()))
    }

    /// Parses a child's IIN and checks that it agrees with the given birth date.
    pub fn parse_child(s: &str, birth_date: Date) -> Result<Iin, IinError> {
        let iin = Self::parse(s)?;
        let iin_date = iin.birth_date();
        if iin_date != birth_date {
            return Err(IinError::BirthDateMismatch {
                iin_date,
                given: birth_date,
            });
        }
        Ok(iin)
    }

    fn birth_date_of(d: &[u8; 12]) -> Result<Date, IinError> {
        let century = match d[6] {
            1 | 2 => 1800,
            3 | 4 => 1900,
            5 | 6 => 2000,
            _ => return Err(IinError::Century),
        };
        let yy = (d[0] * 10 + d[1]) as i16;
        let mm = (d[2] * 10 + d[3]) as i8;
        let dd = (d[4] * 10 + d[5]) as i8;
        Date::new(century + yy, mm, dd).map_err(|_| IinError::BirthDate)
    }

    /// The birth date encoded in a checked IIN.
    pub fn birth_date(&self) -> Date {
        match digits(&self.0).and_then(|d| Self::birth_date_of(&d)) {
            Ok(date) => date,
            // A checked IIN always encodes a valid date.
            Err(_) => unreachable!("Iin holds only checked numbers"),
        }
    }

    /// Builds a valid IIN for a birth date, sex and serial (used by the demo city and
    /// tests). Returns `None` when no check digit exists for this serial: try the next.
    pub fn make(birth_date: Date, female: bool, serial: u32) -> Option<Iin> {
        let year = birth_date.year();
        let century_digit = match year {
            1800..=1899 => 1,
            1900..=1999 => 3,
            2000..=2099 => 5,
            _ => return None,
        } + u8::from(female);
        let s = format!(
            "{:02}{:02}{:02}{}{:04}",
            year % 100,
            birth_date.month(),
            birth_date.day(),
            century_digit,
            serial % 10_000
        );
        let d: Vec<u8> = s.bytes().map(|c| c - b'0').collect();
        let c = check_digit(&d)?;
        Some(Iin(format!("{s}{c}")))
    }

    /// Like [`Iin::make`], trying serials from `serial` upward until one has a check digit.
    pub fn make_valid(birth_date: Date, female: bool, serial: u32) -> Iin {
        (0..20)
            .find_map(|k| Self::make(birth_date, female, serial.wrapping_add(k)))
            .expect("one serial in any 20 consecutive has a check digit")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The IIN as lists show it: first six digits, the rest masked.
    pub fn masked(&self) -> String {
        format!("{}******", &self.0[..6])
    }
}

impl std::fmt::Display for Iin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn made_iins_parse_and_carry_their_birth_date() {
        for (i, day) in (1..=28).enumerate() {
            let bd = date(2014, 2, day);
            let iin = Iin::make_valid(bd, i % 2 == 0, 4000 + i as u32);
            let parsed = Iin::parse_child(iin.as_str(), bd).unwrap();
            assert_eq!(parsed.birth_date(), bd);
        }
    }

    #[test]
    fn refusals_name_the_problem() {
        assert_eq!(Iin::parse("12345"), Err(IinError::Format));
        assert_eq!(Iin::parse("14022801234a"), Err(IinError::Format));
        assert_eq!(Iin::parse("140228712345"), Err(IinError::Century));
        assert_eq!(Iin::parse("141328512345"), Err(IinError::BirthDate));
        let good = Iin::make_valid(date(2014, 2, 28), false, 1234);
        let mut bad = good.as_str().to_string();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert_eq!(Iin::parse(&bad), Err(IinError::CheckDigit));
        assert!(matches!(
            Iin::parse_child(good.as_str(), date(2014, 3, 1)),
            Err(IinError::BirthDateMismatch { .. })
        ));
        // The public NCA test certificates' IIN is not a valid typed IIN (domain.md §7).
        assert_eq!(Iin::parse("123456789011"), Err(IinError::Century));
    }
}
