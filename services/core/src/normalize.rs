//! Subject-key normalisers: turn what a records clerk or an officer typed
//! (a phone number, a name, a birth date, a postal address) into one canonical
//! text, so that every agency of the federation derives the same blind token
//! for the same person, byte for byte. Each normaliser refuses over-long input
//! before any other work, refuses control characters, and never panics on
//! hostile text; it must never be lenient in a way that lets two different
//! spellings of one key disagree between nodes, nor log or echo what it was
//! given. The rules, with examples and their known limits, are in
//! `docs/subject-keys.md`.

use crate::blind_token::{MatchingKey, SubjectKeyKind, SubjectToken};
use crate::error::{CoreError, CoreResult};
use crate::flag::PostalAddress;
use rphonetic::DoubleMetaphone;
use std::str::FromStr;
use time::{Date, Month};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The longest raw input accepted for any one field of a subject key, in bytes.
pub const MAX_KEY_INPUT_LEN: usize = 256;

/// The earliest birth year accepted.
pub const MIN_BIRTH_YEAR: i32 = 1880;

/// A phone number in E.164 form (`+15735550100`). `default_region` is the
/// ISO 3166-1 alpha-2 code (`US`) used when the number has no `+` prefix.
pub fn phone(raw: &str, default_region: &str) -> CoreResult<String> {
    const FIELD: &str = "phone";
    check_raw(FIELD, raw)?;
    let region = phone_region(default_region)?;
    let dialable = phone_dialable_text(raw)?;
    let number = phonenumber::parse(Some(region), dialable)
        .map_err(|error| CoreError::invalid(FIELD, format!("is not a phone number: {error}")))?;
    if number.extension().is_some() {
        return Err(CoreError::invalid(FIELD, "must not have an extension"));
    }
    if !number.is_valid() {
        return Err(CoreError::invalid(FIELD, "is not a valid phone number"));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// The folded full name, `"given family"`: compatibility-decomposed,
/// lowercased, diacritics (accents, Hebrew points, Arabic harakat) dropped,
/// invisible characters removed, apostrophes and periods deleted, hyphens and
/// commas turned into spaces, whitespace collapsed, recomposed (NFC). Letters
/// only, and all in one script (`"José"`, `"JOSE"` and `"Ｊｏｓｅ"` are `jose`).
pub fn person_name(given: &str, family: &str) -> CoreResult<String> {
    let name = FoldedName::new(given, family)?;
    Ok(name.full())
}

/// A phonetic key of the name: the Double Metaphone primary code of each word
/// of the folded name, joined with a space (`"JN SM0"` for both "Jon Smith"
/// and "John Smyth"). A name that is not plain Latin after folding has no
/// phonetic code; its key is the folded name itself.
pub fn phonetic_name(given: &str, family: &str) -> CoreResult<String> {
    let name = FoldedName::new(given, family)?;
    Ok(name.phonetic())
}

/// A birth date written as an ISO 8601 calendar date, `YYYY-MM-DD`, and
/// nothing else, from 1880 on. Surrounding spaces are ignored.
pub fn birth_date(raw: &str) -> CoreResult<Date> {
    const FIELD: &str = "birth_date";
    check_raw(FIELD, raw)?;
    let text = raw.trim();
    if text.is_empty() {
        return Err(CoreError::invalid(FIELD, "is required"));
    }
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(index, byte)| index == 4 || index == 7 || byte.is_ascii_digit());
    if !shaped {
        return Err(CoreError::invalid(FIELD, "must be an iso 8601 date, YYYY-MM-DD"));
    }
    let digits = |range: std::ops::Range<usize>| -> u32 {
        bytes[range]
            .iter()
            .fold(0, |value, byte| value * 10 + u32::from(byte - b'0'))
    };
    let year = digits(0..4) as i32;
    let month = digits(5..7) as u8;
    let day = digits(8..10) as u8;
    if year < MIN_BIRTH_YEAR {
        return Err(CoreError::invalid(
            FIELD,
            format!("must be in {MIN_BIRTH_YEAR} or later, got {year}"),
        ));
    }
    let month = Month::try_from(month).map_err(|_| CoreError::invalid(FIELD, "is not a calendar date"))?;
    Date::from_calendar_date(year, month, day).map_err(|_| CoreError::invalid(FIELD, "is not a calendar date"))
}

/// A postal address as `"street|unit|city|region|zip"`, each part folded like a
/// name (digits kept), USPS street-suffix, directional and unit abbreviations
/// applied word by word, the region as a lowercase two-letter code (US state
/// names accepted), and a US ZIP code cut to its first five digits.
pub fn address(input: &PostalAddress) -> CoreResult<String> {
    const STREET: &str = "address.street";
    const UNIT: &str = "address.unit";
    const CITY: &str = "address.city";
    const REGION: &str = "address.region";
    const POSTAL_CODE: &str = "address.postal_code";
    for (field, raw) in [
        (STREET, &input.street),
        (UNIT, &input.unit),
        (CITY, &input.city),
        (REGION, &input.region),
        (POSTAL_CODE, &input.postal_code),
    ] {
        check_raw(field, raw)?;
    }

    let street_words = folded_words(STREET, &input.street, Profile::Address)?;
    let (street_words, unit_in_street) = split_unit_from_street(street_words);
    if street_words.is_empty() {
        return Err(CoreError::invalid(STREET, "is required"));
    }
    let unit_words = folded_words(UNIT, &input.unit, Profile::Address)?;
    let unit = match (unit_in_street, unit_words.is_empty()) {
        (Some(_), false) => {
            return Err(CoreError::invalid(UNIT, "is given twice, also in address.street"));
        }
        (Some(from_street), true) => unit_identifier(&from_street),
        (None, false) => {
            let identifier = unit_identifier(&unit_words);
            if identifier.is_empty() {
                return Err(CoreError::invalid(UNIT, "has a designator but no unit number"));
            }
            identifier
        }
        (None, true) => String::new(),
    };
    let street = street_words
        .iter()
        .map(|word| street_abbreviation(word).unwrap_or(word.as_str()))
        .collect::<Vec<_>>()
        .join(" ");

    let city_words: Vec<String> = folded_words(CITY, &input.city, Profile::Address)?
        .into_iter()
        .filter(|word| word != "#")
        .collect();
    if city_words.is_empty() {
        return Err(CoreError::invalid(CITY, "is required"));
    }
    let city = city_words
        .iter()
        .map(|word| city_abbreviation(word).unwrap_or(word.as_str()))
        .collect::<Vec<_>>()
        .join(" ");

    let region = region_code(REGION, &input.region)?;
    let postal_code = postal_code(POSTAL_CODE, &input.postal_code, &region)?;
    Ok(format!("{street}|{unit}|{city}|{region}|{postal_code}"))
}

/// Tokens for a name and birth date: exact and phonetic.
pub fn name_birth_date_tokens(
    key: &MatchingKey,
    given: &str,
    family: &str,
    birth_date_raw: &str,
) -> CoreResult<[SubjectToken; 2]> {
    let name = FoldedName::new(given, family)?;
    let date = iso_date(birth_date(birth_date_raw)?);
    Ok([
        key.token(SubjectKeyKind::NameBirthDate, &format!("{}|{date}", name.full())),
        key.token(
            SubjectKeyKind::PhoneticNameBirthDate,
            &format!("{}|{date}", name.phonetic()),
        ),
    ])
}

/// The token of a phone number (see [`phone`]).
pub fn phone_token(key: &MatchingKey, raw: &str, default_region: &str) -> CoreResult<SubjectToken> {
    Ok(key.token(SubjectKeyKind::Phone, &phone(raw, default_region)?))
}

/// The token of a postal address (see [`address`]).
pub fn address_token(key: &MatchingKey, input: &PostalAddress) -> CoreResult<SubjectToken> {
    Ok(key.token(SubjectKeyKind::Address, &address(input)?))
}

/// `YYYY-MM-DD`, the form a birth date takes inside a token.
fn iso_date(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// The checks every raw field gets first: its length, before anything looks at
/// its characters, then control characters.
fn check_raw(field: &str, raw: &str) -> CoreResult<()> {
    if raw.len() > MAX_KEY_INPUT_LEN {
        return Err(CoreError::invalid(
            field,
            format!("must be at most {MAX_KEY_INPUT_LEN} bytes, got {}", raw.len()),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(CoreError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

// ---------------------------------------------------------------- phones

fn phone_region(default_region: &str) -> CoreResult<phonenumber::country::Id> {
    const FIELD: &str = "default_region";
    let shaped = default_region.len() == 2 && default_region.bytes().all(|byte| byte.is_ascii_alphabetic());
    if !shaped {
        return Err(CoreError::invalid(FIELD, "must be an iso 3166-1 alpha-2 region code"));
    }
    phonenumber::country::Id::from_str(&default_region.to_ascii_uppercase())
        .map_err(|_| CoreError::invalid(FIELD, "is not a region known to the phone number library"))
}

/// The raw number reduced to what the parser needs to see: compatibility forms
/// folded (full-width digits become ASCII digits), invisible characters
/// removed, and only digits, one leading `+`, spaces and the usual separators
/// left. Letters are refused, so vanity numbers and extensions are too.
fn phone_dialable_text(raw: &str) -> CoreResult<String> {
    const FIELD: &str = "phone";
    let mut dialable = String::with_capacity(raw.len());
    let mut digit_count = 0usize;
    for c in raw.chars().filter(|c| !is_invisible(*c)).nfkc() {
        let kept = match c {
            '0'..='9' => {
                digit_count += 1;
                c
            }
            '+' if dialable.trim().is_empty() => '+',
            '+' => {
                return Err(CoreError::invalid(FIELD, "may have a '+' only at the start"));
            }
            '-' | '.' | '(' | ')' | '/' => c,
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            c if c.is_whitespace() => ' ',
            _ => {
                return Err(CoreError::invalid(
                    FIELD,
                    "must contain only digits, spaces, a leading '+' and ( ) - . /",
                ));
            }
        };
        dialable.push(kept);
    }
    if digit_count == 0 {
        return Err(CoreError::invalid(FIELD, "is required"));
    }
    Ok(dialable)
}

// ---------------------------------------------------------------- names

/// Both parts of a name, folded and checked for one script.
struct FoldedName {
    given: Vec<String>,
    family: Vec<String>,
}

impl FoldedName {
    fn new(given: &str, family: &str) -> CoreResult<Self> {
        const GIVEN: &str = "given_name";
        const FAMILY: &str = "family_name";
        check_raw(GIVEN, given)?;
        check_raw(FAMILY, family)?;
        let given_words = folded_words(GIVEN, given, Profile::Name)?;
        if given_words.is_empty() {
            return Err(CoreError::invalid(GIVEN, "is required"));
        }
        let family_words = folded_words(FAMILY, family, Profile::Name)?;
        if family_words.is_empty() {
            return Err(CoreError::invalid(FAMILY, "is required"));
        }
        let given_scripts = ScriptSet::of(&given_words);
        let family_scripts = ScriptSet::of(&family_words);
        if !given_scripts.union(family_scripts).is_single_writing_system() {
            let reason = format!(
                "must be written in the same script as given_name, found {} and {}",
                given_scripts.names(),
                family_scripts.names()
            );
            return Err(CoreError::invalid(FAMILY, reason));
        }
        Ok(Self {
            given: given_words,
            family: family_words,
        })
    }

    fn words(&self) -> impl Iterator<Item = &String> {
        self.given.iter().chain(self.family.iter())
    }

    fn full(&self) -> String {
        self.words().map(String::as_str).collect::<Vec<_>>().join(" ")
    }

    fn phonetic(&self) -> String {
        if !self
            .words()
            .all(|word| word.bytes().all(|byte| byte.is_ascii_lowercase()))
        {
            return self.full();
        }
        // Double Metaphone indexes its input by byte; it only ever sees ASCII here.
        let encoder = DoubleMetaphone::default();
        self.words()
            .map(|word| {
                let code = encoder.double_metaphone(word).primary();
                // A word with no sound of its own ("h") stands for itself, in
                // lowercase, so it can never be mistaken for a code.
                if code.is_empty() { word.clone() } else { code }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

// ---------------------------------------------------------------- folding

/// What a folded field may contain besides letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// letters only; hyphens, commas and a few name separators become spaces
    Name,
    /// letters and ASCII digits; `#` is a word of its own; any ASCII
    /// punctuation becomes a space
    Address,
}

/// Folds `raw` and splits it into words, refusing characters the profile does
/// not allow and text that mixes scripts. An empty result means the field
/// held nothing but spaces, punctuation or invisible characters.
fn folded_words(field: &str, raw: &str, profile: Profile) -> CoreResult<Vec<String>> {
    let folded = fold(raw, profile).map_err(|refused| {
        let allowed = match profile {
            Profile::Name => "letters, spaces, apostrophes, hyphens, periods and commas",
            Profile::Address => "letters, digits, spaces and punctuation",
        };
        CoreError::invalid(
            field,
            format!("must contain only {allowed}, found U+{:04X}", u32::from(refused)),
        )
    })?;
    let words: Vec<String> = folded
        .split(' ')
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect();
    let scripts = ScriptSet::of(&words);
    if !scripts.is_single_writing_system() {
        return Err(CoreError::invalid(
            field,
            format!("must be written in one script, found {}", scripts.names()),
        ));
    }
    Ok(words)
}

/// The fold shared by names and addresses. Returns the first refused character.
///
/// NFKD is applied to the text (it contains NFKC's compatibility folding, so
/// `Ｊｏｒｄａｎ` and `ﬁ` come out as plain letters), then each character is
/// lowercased and decomposed again, so that the order of case and
/// decomposition cannot change the result.
fn fold(raw: &str, profile: Profile) -> Result<String, char> {
    // Apostrophes go before decomposition: NFKD turns U+00B4 into a space
    // followed by a combining accent.
    let without_apostrophes = raw.chars().filter(|c| !is_invisible(*c) && !is_apostrophe(*c));
    let decomposed: String = without_apostrophes.nfkd().flat_map(char::to_lowercase).collect();

    let mut folded = String::with_capacity(decomposed.len());
    let mut last_was_space = true;
    for c in decomposed.nfkd() {
        if is_invisible(c) || is_apostrophe(c) || is_deleted_punctuation(c) || is_dropped_mark(c) {
            continue;
        }
        if is_combining_mark(c) {
            // A mark kept for its script (a Devanagari vowel sign, a Japanese
            // voicing mark) is kept only on a letter; a mark with nothing
            // under it is noise.
            if !last_was_space {
                folded.push(c);
            }
            continue;
        }
        if c.is_whitespace() || is_separator(c, profile) {
            if !last_was_space {
                folded.push(' ');
                last_was_space = true;
            }
            continue;
        }
        if profile == Profile::Address && c == '#' {
            if !last_was_space {
                folded.push(' ');
            }
            folded.push_str("# ");
            last_was_space = true;
            continue;
        }
        if c.is_alphabetic() {
            match latin_letter_without_decomposition(c) {
                Some(replacement) => folded.push_str(replacement),
                None => folded.push(c),
            }
            last_was_space = false;
            continue;
        }
        if profile == Profile::Address && c.is_ascii_digit() {
            folded.push(c);
            last_was_space = false;
            continue;
        }
        return Err(c);
    }
    if folded.ends_with(' ') {
        folded.pop();
    }
    Ok(folded.nfc().collect())
}

/// Characters that render as nothing (or only steer rendering) and so must not
/// change a key: zero-width space and joiners, the byte-order mark, the soft
/// hyphen, bidirectional controls, variation selectors, tags, Hangul fillers
/// and the rest of Unicode's default-ignorable and format characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Apostrophes and look-alikes, deleted so that "O'Brien" == "O’Brien" == "OBrien".
fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '`' | '\u{00B4}' | '\u{02B9}'
            ..='\u{02BC}' | '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{2032}' | '\u{1FFD}' | '\u{FF07}'
    )
}

/// Punctuation deleted without a trace: periods ("J.R." == "JR",
/// "P.O." == "PO") and the Catalan middle dot ("Col·lell").
fn is_deleted_punctuation(c: char) -> bool {
    matches!(c, '.' | '\u{00B7}')
}

/// Punctuation that separates words.
fn is_separator(c: char, profile: Profile) -> bool {
    let name_separator = matches!(c, '-' | ',' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FB}');
    match profile {
        Profile::Name => name_separator,
        Profile::Address => name_separator || (c.is_ascii_punctuation() && c != '#') || c == '\u{2044}',
    }
}

/// Combining marks that are diacritics rather than letters: the generic
/// combining blocks (accents on Latin, Greek and Cyrillic, and what "Zalgo"
/// text is made of), Cyrillic titlo, Hebrew points and Arabic harakat. Marks
/// that are part of spelling in other scripts (Indic vowel signs, the
/// Japanese voicing marks) are kept.
fn is_dropped_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{0483}'..='\u{0489}'
            | '\u{0591}'..='\u{05C7}'
            | '\u{0610}'..='\u{061A}'
            | '\u{064B}'..='\u{065F}'
            | '\u{0670}'
            | '\u{06D6}'..='\u{06ED}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    ) && is_combining_mark(c)
}

/// Lowercase Latin (and Greek final sigma) letters that Unicode does not
/// decompose, written the way a keyboard without them would.
fn latin_letter_without_decomposition(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'ł' => "l",
        'đ' | 'ð' => "d",
        'þ' => "th",
        'ı' => "i",
        'ħ' => "h",
        'ŧ' => "t",
        'ς' => "σ",
        _ => return None,
    })
}

// ---------------------------------------------------------------- scripts

/// The writing system of a letter, as far as mixed-script refusal needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
    Armenian,
    Hebrew,
    Arabic,
    Syriac,
    Thaana,
    Devanagari,
    Bengali,
    Gurmukhi,
    Gujarati,
    Oriya,
    Tamil,
    Telugu,
    Kannada,
    Malayalam,
    Sinhala,
    Thai,
    Lao,
    Tibetan,
    Myanmar,
    Georgian,
    Hangul,
    Ethiopic,
    Cherokee,
    CanadianSyllabics,
    Khmer,
    Mongolian,
    Hiragana,
    Katakana,
    Bopomofo,
    Han,
    Yi,
    /// any letter outside the ranges below
    Other,
}

const SCRIPT_COUNT: usize = Script::Other as usize + 1;
// Every script is one bit of a `ScriptSet`.
const _: () = assert!(SCRIPT_COUNT <= 64);

/// Code-point ranges of the scripts above; characters not listed (digits,
/// punctuation, spaces) belong to no script.
const SCRIPT_RANGES: &[(char, char, Script)] = &[
    ('A', 'Z', Script::Latin),
    ('a', 'z', Script::Latin),
    ('\u{00AA}', '\u{00AA}', Script::Latin),
    ('\u{00BA}', '\u{00BA}', Script::Latin),
    ('\u{00C0}', '\u{024F}', Script::Latin),
    ('\u{0250}', '\u{02B8}', Script::Latin),
    ('\u{0370}', '\u{03FF}', Script::Greek),
    ('\u{0400}', '\u{052F}', Script::Cyrillic),
    ('\u{0530}', '\u{058F}', Script::Armenian),
    ('\u{0590}', '\u{05FF}', Script::Hebrew),
    ('\u{0600}', '\u{06FF}', Script::Arabic),
    ('\u{0700}', '\u{074F}', Script::Syriac),
    ('\u{0750}', '\u{077F}', Script::Arabic),
    ('\u{0780}', '\u{07BF}', Script::Thaana),
    ('\u{0870}', '\u{08FF}', Script::Arabic),
    ('\u{0900}', '\u{097F}', Script::Devanagari),
    ('\u{0980}', '\u{09FF}', Script::Bengali),
    ('\u{0A00}', '\u{0A7F}', Script::Gurmukhi),
    ('\u{0A80}', '\u{0AFF}', Script::Gujarati),
    ('\u{0B00}', '\u{0B7F}', Script::Oriya),
    ('\u{0B80}', '\u{0BFF}', Script::Tamil),
    ('\u{0C00}', '\u{0C7F}', Script::Telugu),
    ('\u{0C80}', '\u{0CFF}', Script::Kannada),
    ('\u{0D00}', '\u{0D7F}', Script::Malayalam),
    ('\u{0D80}', '\u{0DFF}', Script::Sinhala),
    ('\u{0E00}', '\u{0E7F}', Script::Thai),
    ('\u{0E80}', '\u{0EFF}', Script::Lao),
    ('\u{0F00}', '\u{0FFF}', Script::Tibetan),
    ('\u{1000}', '\u{109F}', Script::Myanmar),
    ('\u{10A0}', '\u{10FF}', Script::Georgian),
    ('\u{1100}', '\u{11FF}', Script::Hangul),
    ('\u{1200}', '\u{139F}', Script::Ethiopic),
    ('\u{13A0}', '\u{13FF}', Script::Cherokee),
    ('\u{1400}', '\u{167F}', Script::CanadianSyllabics),
    ('\u{1780}', '\u{17FF}', Script::Khmer),
    ('\u{1800}', '\u{18AF}', Script::Mongolian),
    ('\u{18B0}', '\u{18FF}', Script::CanadianSyllabics),
    ('\u{1C80}', '\u{1C8F}', Script::Cyrillic),
    ('\u{1C90}', '\u{1CBF}', Script::Georgian),
    ('\u{1D00}', '\u{1DBF}', Script::Latin),
    ('\u{1E00}', '\u{1EFF}', Script::Latin),
    ('\u{1F00}', '\u{1FFF}', Script::Greek),
    ('\u{2C60}', '\u{2C7F}', Script::Latin),
    ('\u{2D00}', '\u{2D2F}', Script::Georgian),
    ('\u{2D80}', '\u{2DDF}', Script::Ethiopic),
    ('\u{2DE0}', '\u{2DFF}', Script::Cyrillic),
    ('\u{2E80}', '\u{2FDF}', Script::Han),
    ('\u{3005}', '\u{3007}', Script::Han),
    ('\u{3041}', '\u{309F}', Script::Hiragana),
    ('\u{30A0}', '\u{30FF}', Script::Katakana),
    ('\u{3100}', '\u{312F}', Script::Bopomofo),
    ('\u{3130}', '\u{318F}', Script::Hangul),
    ('\u{31A0}', '\u{31BF}', Script::Bopomofo),
    ('\u{31F0}', '\u{31FF}', Script::Katakana),
    ('\u{3400}', '\u{4DBF}', Script::Han),
    ('\u{4E00}', '\u{9FFF}', Script::Han),
    ('\u{A000}', '\u{A4CF}', Script::Yi),
    ('\u{A640}', '\u{A69F}', Script::Cyrillic),
    ('\u{A720}', '\u{A7FF}', Script::Latin),
    ('\u{A8E0}', '\u{A8FF}', Script::Devanagari),
    ('\u{A960}', '\u{A97F}', Script::Hangul),
    ('\u{AB30}', '\u{AB6F}', Script::Latin),
    ('\u{AB70}', '\u{ABBF}', Script::Cherokee),
    ('\u{AC00}', '\u{D7FF}', Script::Hangul),
    ('\u{F900}', '\u{FAFF}', Script::Han),
    ('\u{FB00}', '\u{FB06}', Script::Latin),
    ('\u{FB13}', '\u{FB17}', Script::Armenian),
    ('\u{FB1D}', '\u{FB4F}', Script::Hebrew),
    ('\u{FB50}', '\u{FDFF}', Script::Arabic),
    ('\u{FE70}', '\u{FEFE}', Script::Arabic),
    ('\u{1E030}', '\u{1E08F}', Script::Cyrillic),
    ('\u{1DF00}', '\u{1DFFF}', Script::Latin),
    ('\u{20000}', '\u{3134F}', Script::Han),
];

impl Script {
    fn of(c: char) -> Option<Script> {
        if !(c.is_alphabetic() || is_combining_mark(c)) {
            return None;
        }
        let script = SCRIPT_RANGES
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&c))
            .map_or(Script::Other, |(_, _, script)| *script);
        Some(script)
    }

    fn name(self) -> &'static str {
        match self {
            Script::Latin => "latin",
            Script::Greek => "greek",
            Script::Cyrillic => "cyrillic",
            Script::Armenian => "armenian",
            Script::Hebrew => "hebrew",
            Script::Arabic => "arabic",
            Script::Syriac => "syriac",
            Script::Thaana => "thaana",
            Script::Devanagari => "devanagari",
            Script::Bengali => "bengali",
            Script::Gurmukhi => "gurmukhi",
            Script::Gujarati => "gujarati",
            Script::Oriya => "oriya",
            Script::Tamil => "tamil",
            Script::Telugu => "telugu",
            Script::Kannada => "kannada",
            Script::Malayalam => "malayalam",
            Script::Sinhala => "sinhala",
            Script::Thai => "thai",
            Script::Lao => "lao",
            Script::Tibetan => "tibetan",
            Script::Myanmar => "myanmar",
            Script::Georgian => "georgian",
            Script::Hangul => "hangul",
            Script::Ethiopic => "ethiopic",
            Script::Cherokee => "cherokee",
            Script::CanadianSyllabics => "canadian syllabics",
            Script::Khmer => "khmer",
            Script::Mongolian => "mongolian",
            Script::Hiragana => "hiragana",
            Script::Katakana => "katakana",
            Script::Bopomofo => "bopomofo",
            Script::Han => "han",
            Script::Yi => "yi",
            Script::Other => "an unlisted script",
        }
    }

    fn bit(self) -> u64 {
        1u64 << (self as u32)
    }
}

/// The scripts used by some text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct ScriptSet(u64);

impl ScriptSet {
    fn of(words: &[String]) -> Self {
        let bits = words
            .iter()
            .flat_map(|word| word.chars())
            .filter_map(Script::of)
            .fold(0, |bits, script| bits | script.bit());
        Self(bits)
    }

    fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// One script, or one of the combinations a single person's name is
    /// normally written in: Japanese (Han with kana), Chinese (Han with
    /// Bopomofo) and Korean (Hangul with Han).
    fn is_single_writing_system(self) -> bool {
        let japanese = Script::Han.bit() | Script::Hiragana.bit() | Script::Katakana.bit();
        let chinese = Script::Han.bit() | Script::Bopomofo.bit();
        let korean = Script::Han.bit() | Script::Hangul.bit();
        self.0.count_ones() <= 1 || [japanese, chinese, korean].iter().any(|allowed| self.0 & !allowed == 0)
    }

    fn names(self) -> String {
        const ALL: [Script; SCRIPT_COUNT] = [
            Script::Latin,
            Script::Greek,
            Script::Cyrillic,
            Script::Armenian,
            Script::Hebrew,
            Script::Arabic,
            Script::Syriac,
            Script::Thaana,
            Script::Devanagari,
            Script::Bengali,
            Script::Gurmukhi,
            Script::Gujarati,
            Script::Oriya,
            Script::Tamil,
            Script::Telugu,
            Script::Kannada,
            Script::Malayalam,
            Script::Sinhala,
            Script::Thai,
            Script::Lao,
            Script::Tibetan,
            Script::Myanmar,
            Script::Georgian,
            Script::Hangul,
            Script::Ethiopic,
            Script::Cherokee,
            Script::CanadianSyllabics,
            Script::Khmer,
            Script::Mongolian,
            Script::Hiragana,
            Script::Katakana,
            Script::Bopomofo,
            Script::Han,
            Script::Yi,
            Script::Other,
        ];
        let names: Vec<&str> = ALL
            .iter()
            .filter(|script| self.0 & script.bit() != 0)
            .map(|script| script.name())
            .collect();
        if names.is_empty() {
            "no letters".to_owned()
        } else {
            names.join(" and ")
        }
    }
}

// ---------------------------------------------------------------- addresses

/// Secondary-unit designators that say only "a unit of this building"; they
/// are dropped so that "Apt. 4B", "#4b", "Unit 4-B" and "Suite 4B" agree.
const UNIT_DESIGNATORS: &[&str] = &[
    "#",
    "apt",
    "apartment",
    "unit",
    "suite",
    "ste",
    "no",
    "number",
    "num",
    "room",
    "rm",
];

/// Designators recognised inside a street line ("1200 N Pine St Apt 4B").
/// "no" and "number" are left out: they occur in street names.
const STREET_UNIT_DESIGNATORS: &[&str] = &["#", "apt", "apartment", "unit", "suite", "ste", "room", "rm"];

/// Cuts a unit designator and what follows it off a street line. The
/// designator must follow at least one word and be followed by at least one.
fn split_unit_from_street(words: Vec<String>) -> (Vec<String>, Option<Vec<String>>) {
    let position = words.iter().enumerate().position(|(index, word)| {
        index >= 1 && index + 1 < words.len() && STREET_UNIT_DESIGNATORS.contains(&word.as_str())
    });
    match position {
        Some(index) => {
            let mut street = words;
            let unit = street.split_off(index);
            (street, Some(unit))
        }
        // A stray '#' with nothing after it says nothing.
        None => (words.into_iter().filter(|word| word != "#").collect(), None),
    }
}

/// A unit as one word: designators dropped, the rest run together, so
/// "Apt 4-B" and "#4b" are both `4b`.
fn unit_identifier(words: &[String]) -> String {
    let expanded = words
        .iter()
        .filter(|word| !UNIT_DESIGNATORS.contains(&word.as_str()))
        .map(|word| unit_abbreviation(word).unwrap_or(word.as_str()));
    expanded.collect::<Vec<_>>().concat()
}

fn unit_abbreviation(word: &str) -> Option<&'static str> {
    Some(match word {
        "building" => "bldg",
        "floor" => "fl",
        "department" => "dept",
        "trailer" => "trlr",
        "space" => "spc",
        _ => return None,
    })
}

/// Words that name places as well as streets: saints, mounts, forts and
/// compass points.
fn place_abbreviation(word: &str) -> Option<&'static str> {
    Some(match word {
        "saint" => "st",
        "mount" => "mt",
        "fort" => "ft",
        "north" => "n",
        "south" => "s",
        "east" => "e",
        "west" => "w",
        "northeast" => "ne",
        "northwest" => "nw",
        "southeast" => "se",
        "southwest" => "sw",
        _ => return None,
    })
}

fn city_abbreviation(word: &str) -> Option<&'static str> {
    place_abbreviation(word)
}

/// USPS Publication 28 street suffixes (the common ones, with the common
/// misspellings of each), directionals and ordinals, word by word.
fn street_abbreviation(word: &str) -> Option<&'static str> {
    if let Some(place) = place_abbreviation(word) {
        return Some(place);
    }
    Some(match word {
        "alley" | "allee" | "ally" => "aly",
        "avenue" | "av" | "aven" | "avenu" | "avn" | "avnue" => "ave",
        "boulevard" | "boul" | "boulv" | "blv" => "blvd",
        "bypass" | "bypa" | "bypas" | "byps" => "byp",
        "causeway" | "causwa" | "cswy" => "cswy",
        "center" | "centre" | "cent" | "centr" | "cnter" | "cntr" | "cen" => "ctr",
        "circle" | "circ" | "circl" | "crcl" | "crcle" => "cir",
        "court" => "ct",
        "courts" => "cts",
        "cove" => "cv",
        "creek" => "crk",
        "crescent" | "crsent" | "crsnt" => "cres",
        "crossing" | "crssng" => "xing",
        "drive" | "driv" | "drv" => "dr",
        "expressway" | "exp" | "expr" | "express" | "expw" => "expy",
        "extension" | "extn" | "extnsn" => "ext",
        "freeway" | "frway" | "frwy" => "fwy",
        "gardens" | "gardn" | "grden" | "grdn" => "gdns",
        "heights" | "ht" => "hts",
        "highway" | "highwy" | "hiway" | "hiwy" | "hway" => "hwy",
        "hollow" | "hllw" | "hollows" | "holws" => "holw",
        "junction" | "jction" | "jctn" | "junctn" | "juncton" => "jct",
        "lane" => "ln",
        "loop" | "loops" => "loop",
        "manor" => "mnr",
        "mountain" | "mntain" | "mntn" | "mountin" => "mtn",
        "parkway" | "parkwy" | "pkway" | "pky" => "pkwy",
        "place" => "pl",
        "plaza" | "plza" => "plz",
        "point" => "pt",
        "ridge" => "rdg",
        "road" => "rd",
        "route" => "rte",
        "square" | "sqr" | "sqre" | "squ" => "sq",
        "street" | "str" | "strt" => "st",
        "terrace" | "terr" => "ter",
        "trail" | "trails" | "trls" => "trl",
        "turnpike" | "trnpk" | "turnpk" => "tpke",
        "village" | "vill" | "villag" | "villg" => "vlg",
        "first" => "1st",
        "second" => "2nd",
        "third" => "3rd",
        "fourth" => "4th",
        "fifth" => "5th",
        "sixth" => "6th",
        "seventh" => "7th",
        "eighth" => "8th",
        "ninth" => "9th",
        "tenth" => "10th",
        _ => return None,
    })
}

/// US states, the District of Columbia and the inhabited territories, by
/// folded name, with their USPS codes.
const US_REGIONS: &[(&str, &str)] = &[
    ("alabama", "al"),
    ("alaska", "ak"),
    ("arizona", "az"),
    ("arkansas", "ar"),
    ("california", "ca"),
    ("colorado", "co"),
    ("connecticut", "ct"),
    ("delaware", "de"),
    ("florida", "fl"),
    ("georgia", "ga"),
    ("hawaii", "hi"),
    ("idaho", "id"),
    ("illinois", "il"),
    ("indiana", "in"),
    ("iowa", "ia"),
    ("kansas", "ks"),
    ("kentucky", "ky"),
    ("louisiana", "la"),
    ("maine", "me"),
    ("maryland", "md"),
    ("massachusetts", "ma"),
    ("michigan", "mi"),
    ("minnesota", "mn"),
    ("mississippi", "ms"),
    ("missouri", "mo"),
    ("montana", "mt"),
    ("nebraska", "ne"),
    ("nevada", "nv"),
    ("new hampshire", "nh"),
    ("new jersey", "nj"),
    ("new mexico", "nm"),
    ("new york", "ny"),
    ("north carolina", "nc"),
    ("north dakota", "nd"),
    ("ohio", "oh"),
    ("oklahoma", "ok"),
    ("oregon", "or"),
    ("pennsylvania", "pa"),
    ("rhode island", "ri"),
    ("south carolina", "sc"),
    ("south dakota", "sd"),
    ("tennessee", "tn"),
    ("texas", "tx"),
    ("utah", "ut"),
    ("vermont", "vt"),
    ("virginia", "va"),
    ("washington", "wa"),
    ("west virginia", "wv"),
    ("wisconsin", "wi"),
    ("wyoming", "wy"),
    ("district of columbia", "dc"),
    ("american samoa", "as"),
    ("guam", "gu"),
    ("northern mariana islands", "mp"),
    ("puerto rico", "pr"),
    ("us virgin islands", "vi"),
    ("virgin islands", "vi"),
];

/// The military "states" of APO/FPO addresses; they take ZIP codes too.
const US_MILITARY_REGIONS: &[&str] = &["aa", "ae", "ap"];

fn is_us_region(code: &str) -> bool {
    US_REGIONS.iter().any(|(_, us_code)| *us_code == code) || US_MILITARY_REGIONS.contains(&code)
}

/// The region as a lowercase two-letter code: a code as given ("MO", "m.o."),
/// or a US state's name ("Missouri"). Empty when none was given.
fn region_code(field: &str, raw: &str) -> CoreResult<String> {
    let words = folded_words(field, raw, Profile::Address)?;
    if words.is_empty() {
        return Ok(String::new());
    }
    let compact = words.concat();
    if compact.len() == 2 && compact.bytes().all(|byte| byte.is_ascii_lowercase()) {
        return Ok(compact);
    }
    let name = words.join(" ");
    US_REGIONS
        .iter()
        .find(|(state, _)| *state == name)
        .map(|(_, code)| (*code).to_owned())
        .ok_or_else(|| CoreError::invalid(field, "must be a two-letter region code or the name of a us state"))
}

/// A US ZIP code cut to its five digits ("65401-1234" → `65401`); any other
/// postal code lowercased with spaces and hyphens removed ("K1A 0B1" →
/// `k1a0b1`). A US region requires a ZIP code.
fn postal_code(field: &str, raw: &str, region: &str) -> CoreResult<String> {
    let folded: String = raw.chars().filter(|c| !is_invisible(*c)).nfkc().collect();
    let mut compact = String::with_capacity(folded.len());
    for c in folded.chars() {
        match c {
            '0'..='9' | 'a'..='z' => compact.push(c),
            'A'..='Z' => compact.push(c.to_ascii_lowercase()),
            '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' => {}
            c if c.is_whitespace() => {}
            _ => {
                return Err(CoreError::invalid(
                    field,
                    "must contain only letters, digits, spaces and hyphens",
                ));
            }
        }
    }
    if compact.is_empty() {
        return Ok(String::new());
    }
    let all_digits = compact.bytes().all(|byte| byte.is_ascii_digit());
    if all_digits && (compact.len() == 5 || compact.len() == 9) {
        compact.truncate(5);
        return Ok(compact);
    }
    if is_us_region(region) {
        return Err(CoreError::invalid(field, "must be a us zip code, 12345 or 12345-6789"));
    }
    Ok(compact)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZWSP: char = '\u{200B}';
    const RLO: char = '\u{202E}';
    const SQL: &str = "'; DROP TABLE flags; --";
    const ZALGO: &str = "Z\u{351}\u{36b}\u{343}\u{36a}\u{302}\u{36b}\u{33d}\u{34f}\u{334}\u{319}\u{324}\u{31e}\u{349}\u{35a}\u{32f}\u{31e}\u{320}\u{34d}a\u{334}\u{335}\u{31c}\u{330}\u{354}\u{36b}\u{357}\u{362}l\u{320}\u{368}\u{367}\u{369}\u{358}g\u{334}\u{33b}\u{348}\u{34d}\u{354}\u{339}\u{311}\u{357}\u{30e}\u{305}\u{35b}\u{301}o\u{335}\u{339}\u{33b}\u{31d}\u{333}\u{342}\u{30c}\u{30c}\u{358}";

    fn key() -> MatchingKey {
        MatchingKey::from_bytes(vec![7; 32]).unwrap()
    }

    fn field_of(error: CoreError) -> String {
        match error {
            CoreError::InvalidArgument { field, .. } => field,
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    fn reason_of(error: CoreError) -> String {
        match error {
            CoreError::InvalidArgument { reason, .. } => reason,
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    fn assert_invalid<T: std::fmt::Debug>(result: CoreResult<T>, field: &str) -> String {
        let error = result.expect_err("expected a refusal");
        let message = error.to_string();
        assert_eq!(field_of(error.clone()), field, "{message}");
        let reason = reason_of(error);
        assert!(!reason.ends_with('.'), "{reason}");
        assert!(reason.chars().next().is_some_and(|c| !c.is_uppercase()), "{reason}");
        reason
    }

    fn big(len: usize) -> String {
        "a".repeat(len)
    }

    fn pine_street() -> PostalAddress {
        PostalAddress {
            street: "1200 North Pine Street".into(),
            unit: "Apt. 4B".into(),
            city: "Rolla".into(),
            region: "Missouri".into(),
            postal_code: "65401-1234".into(),
        }
    }

    // ------------------------------------------------------------ phone

    #[test]
    fn phone_spellings_of_one_us_number_agree() {
        for raw in [
            "(573) 555-0100",
            "573.555.0100",
            "+1 573 555 0100",
            "1-573-555-0100",
            "5735550100",
            "+15735550100",
            "  573 555 0100  ",
            "573/555-0100",
            "573\u{2013}555\u{2013}0100",
            "573\u{00A0}555\u{00A0}0100",
        ] {
            assert_eq!(phone(raw, "US").unwrap(), "+15735550100", "{raw:?}");
        }
        assert_eq!(phone("(573) 555-0100", "us").unwrap(), "+15735550100");
    }

    #[test]
    fn phone_full_width_digits_fold_to_ascii() {
        assert_eq!(phone("５７３５５５０１００", "US").unwrap(), "+15735550100");
        assert_eq!(phone("＋１ ５７３ ５５５ ０１００", "US").unwrap(), "+15735550100");
    }

    #[test]
    fn phone_zero_width_and_bidi_characters_are_ignored() {
        let zero_width = format!("573{ZWSP}555{ZWSP}0100");
        assert_eq!(phone(&zero_width, "US").unwrap(), "+15735550100");
        let with_bom = "\u{FEFF}573-555-0100\u{200D}";
        assert_eq!(phone(with_bom, "US").unwrap(), "+15735550100");
        let with_override = format!("{RLO}573-555-0100\u{202C}");
        assert_eq!(phone(&with_override, "US").unwrap(), "+15735550100");
        assert_invalid(phone(&format!("{ZWSP}{ZWSP}"), "US"), "phone");
    }

    #[test]
    fn phone_international_numbers_keep_their_country() {
        assert_eq!(phone("+44 20 7946 0958", "US").unwrap(), "+442079460958");
        assert_eq!(phone("020 7946 0958", "GB").unwrap(), "+442079460958");
        assert_eq!(phone("011 44 20 7946 0958", "US").unwrap(), "+442079460958");
    }

    #[test]
    fn phone_refuses_hostile_and_invalid_input() {
        for raw in ["", " ", "\u{3000}\t", "()- ./"] {
            let result = phone(raw, "US");
            assert!(result.is_err(), "{raw:?}");
        }
        assert_eq!(assert_invalid(phone("", "US"), "phone"), "is required");
        assert_eq!(assert_invalid(phone("   ", "US"), "phone"), "is required");
        assert!(assert_invalid(phone("573\u{0}5550100", "US"), "phone").contains("control"));
        assert!(assert_invalid(phone("573\n5550100", "US"), "phone").contains("control"));
        assert_invalid(phone(SQL, "US"), "phone");
        assert_invalid(phone("573-555-0100'; DROP TABLE flags; --", "US"), "phone");
        assert_invalid(phone("573-555-0100 ☎️", "US"), "phone");
        assert_invalid(phone("573-555-0100 ext 12", "US"), "phone");
        assert_invalid(phone("1-800-FLOWERS", "US"), "phone");
        assert_invalid(phone("573+555+0100", "US"), "phone");
        assert_invalid(phone(ZALGO, "US"), "phone");
        assert_invalid(phone("5\u{301}73-555-0100", "US"), "phone");
        // Cyrillic and Arabic-Indic look-alike digits are not digits here.
        assert_invalid(phone("573-555-01\u{41E}0", "US"), "phone");
        assert_invalid(
            phone(
                "\u{665}\u{667}\u{663}\u{665}\u{665}\u{665}\u{660}\u{661}\u{660}\u{660}",
                "US",
            ),
            "phone",
        );
        // Not numbers the library holds valid.
        assert_invalid(phone("555-0100", "US"), "phone");
        assert_invalid(phone("000-000-0000", "US"), "phone");
        assert_invalid(phone("123", "US"), "phone");
        assert_invalid(phone(&"9".repeat(40), "US"), "phone");
    }

    #[test]
    fn phone_length_is_checked_before_anything_else() {
        let ten_kb = "5".repeat(10 * 1024);
        let reason = assert_invalid(phone(&ten_kb, "US"), "phone");
        assert_eq!(reason, "must be at most 256 bytes, got 10240");
        let one_mib = format!("{}\u{0}", "\u{200B}".repeat(1024 * 1024 / 3));
        assert!(assert_invalid(phone(&one_mib, "US"), "phone").starts_with("must be at most 256 bytes"));
        // The region is not even looked at for an over-long number.
        assert!(assert_invalid(phone(&ten_kb, "??"), "phone").starts_with("must be at most"));
        let at_limit = format!("{}5735550100", " ".repeat(MAX_KEY_INPUT_LEN - 10));
        assert_eq!(phone(&at_limit, "US").unwrap(), "+15735550100");
    }

    #[test]
    fn phone_region_must_be_a_known_alpha_2_code() {
        assert_invalid(phone("573-555-0100", ""), "default_region");
        assert_invalid(phone("573-555-0100", "USA"), "default_region");
        assert_invalid(phone("573-555-0100", "ZZ"), "default_region");
        assert_invalid(phone("573-555-0100", "Ｕ"), "default_region");
        assert_invalid(phone("573-555-0100", "U\u{0}"), "default_region");
        assert_invalid(phone("573-555-0100", SQL), "default_region");
    }

    #[test]
    fn phone_never_panics_on_generated_input() {
        // A small deterministic fuzz over the characters the parser is shown.
        let alphabet: Vec<char> = "0123456789+-(). /1+ 0".chars().collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..3000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = (state >> 59) as usize + 1;
            let mut raw = String::new();
            for shift in 0..len {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                raw.push(alphabet[((state >> 33) as usize + shift) % alphabet.len()]);
            }
            for region in ["US", "GB", "DE", "CH", "NZ", "JP"] {
                if let Ok(e164) = phone(&raw, region) {
                    assert!(
                        e164.starts_with('+') && e164[1..].bytes().all(|b| b.is_ascii_digit()),
                        "{raw:?}"
                    );
                }
            }
        }
    }

    // ------------------------------------------------------------ names

    #[test]
    fn names_fold_case_diacritics_and_width() {
        assert_eq!(person_name("José", "Núñez").unwrap(), "jose nunez");
        assert_eq!(
            person_name("José", "Núñez").unwrap(),
            person_name("JOSE", "NUNEZ").unwrap()
        );
        // Decomposed input (e + combining acute) folds the same as precomposed.
        assert_eq!(person_name("Jose\u{301}", "Nu\u{303}n\u{303}ez").unwrap(), "jose nunez");
        assert_eq!(
            person_name("Zoë", "Smith").unwrap(),
            person_name("zoe", "smith").unwrap()
        );
        assert_eq!(person_name("Ｊｏｒｄａｎ", "Ｌｅｅ").unwrap(), "jordan lee");
        assert_eq!(person_name("Jürgen", "Straße").unwrap(), "jurgen strasse");
        assert_eq!(person_name("Søren", "Łukasiewicz").unwrap(), "soren lukasiewicz");
        assert_eq!(person_name("İsmail", "Işık").unwrap(), "ismail isik");
        assert_eq!(person_name("Ǆemal", "ﬁnn").unwrap(), "dzemal finn");
        assert_eq!(person_name("𝐉𝐨𝐫𝐝𝐚𝐧", "Lee").unwrap(), "jordan lee");
        assert_eq!(person_name("  Mary\u{3000}Ann ", "  Lee  ").unwrap(), "mary ann lee");
    }

    #[test]
    fn names_fold_punctuation_consistently() {
        // Apostrophes are deleted.
        let obrien = person_name("Sean", "O'Brien").unwrap();
        assert_eq!(obrien, "sean obrien");
        assert_eq!(person_name("Sean", "OBrien").unwrap(), obrien);
        assert_eq!(person_name("Sean", "O’Brien").unwrap(), obrien);
        assert_eq!(person_name("Sean", "O´Brien").unwrap(), obrien);
        assert_eq!(person_name("Sean", "O`Brien").unwrap(), obrien);
        assert_ne!(person_name("Sean", "O Brien").unwrap(), obrien);
        // Hyphens and commas separate words.
        let mary_jane = person_name("Mary-Jane", "Smith").unwrap();
        assert_eq!(mary_jane, "mary jane smith");
        assert_eq!(person_name("Mary Jane", "Smith").unwrap(), mary_jane);
        assert_eq!(person_name("Mary\u{2010}Jane", "Smith").unwrap(), mary_jane);
        assert_eq!(person_name("Mary - Jane", "Smith").unwrap(), mary_jane);
        assert_eq!(person_name("Mary,Jane", "Smith,").unwrap(), mary_jane);
        // Periods are deleted.
        assert_eq!(person_name("J.R.", "Smith").unwrap(), "jr smith");
        assert_eq!(person_name("JR", "Smith Jr.").unwrap(), "jr smith jr");
        assert_eq!(person_name("Núria", "Col·lell").unwrap(), "nuria collell");
    }

    #[test]
    fn names_drop_invisible_characters() {
        let plain = person_name("Jordan", "Lee").unwrap();
        for given in [
            format!("Jor{ZWSP}dan"),
            "Jor\u{200C}dan".to_owned(),
            "Jor\u{200D}dan".to_owned(),
            "\u{FEFF}Jordan".to_owned(),
            "Jor\u{00AD}dan".to_owned(),
            format!("{RLO}Jordan\u{202C}"),
            "\u{2066}Jordan\u{2069}".to_owned(),
            "Jordan\u{E0041}".to_owned(),
            "Jordan\u{FE0F}".to_owned(),
            "Jordan\u{3164}".to_owned(),
        ] {
            assert_eq!(person_name(&given, "Lee").unwrap(), plain, "{given:?}");
        }
        assert_eq!(person_name("Jordan", &format!("L{ZWSP}ee")).unwrap(), plain);
    }

    #[test]
    fn names_in_one_non_latin_script_are_accepted() {
        assert_eq!(person_name("Иван", "Петров").unwrap(), "иван петров");
        assert_eq!(person_name("ИВАН", "ПЕТРОВ").unwrap(), "иван петров");
        // The breve of й is a diacritic like any other.
        assert_eq!(person_name("Андрей", "Ёлкин").unwrap(), "андреи елкин");
        assert_eq!(person_name("Νίκος", "Παπαδόπουλος").unwrap(), "νικοσ παπαδοπουλοσ");
        assert_eq!(person_name("ΝΙΚΟΣ", "ΠΑΠΑΔΟΠΟΥΛΟΣ").unwrap(), "νικοσ παπαδοπουλοσ");
        assert_eq!(person_name("太郎", "山田").unwrap(), "太郎 山田");
        // Japanese mixes Han and kana; the voicing mark survives the fold.
        assert_eq!(person_name("ゆうガ", "山田").unwrap(), "ゆうガ 山田");
        assert_eq!(person_name("ｶﾞｸ", "山田").unwrap(), "ガク 山田");
        assert_eq!(person_name("민준", "김").unwrap(), "민준 김");
        // Devanagari vowel signs are letters of the name, not diacritics.
        assert_ne!(person_name("राम", "शर्मा").unwrap(), person_name("रमा", "शर्मा").unwrap());
        // Hebrew points are dropped.
        assert_eq!(person_name("דָּוִד", "כהן").unwrap(), person_name("דוד", "כהן").unwrap());
        assert_eq!(person_name("محمد", "علي").unwrap(), "محمد علي");
    }

    #[test]
    fn names_mixing_scripts_are_refused() {
        // "Jоrdan" with a Cyrillic о.
        let reason = assert_invalid(person_name("J\u{43E}rdan", "Lee"), "given_name");
        assert!(reason.contains("latin and cyrillic"), "{reason}");
        // "Smith" with a Cyrillic С and Greek ο.
        assert_invalid(person_name("John", "\u{421}mith"), "family_name");
        assert_invalid(person_name("John", "Sm\u{3BF}th"), "family_name");
        // Each part in one script, but not the same one.
        let reason = assert_invalid(person_name("John", "Петров"), "family_name");
        assert!(reason.contains("same script"), "{reason}");
        assert_invalid(person_name("Ivan", "Pet\u{440}ov"), "family_name");
        assert_invalid(person_name("太郎", "Yamada"), "family_name");
        // An Armenian or Cherokee look-alike is caught too.
        assert_invalid(person_name("J\u{585}rdan", "Lee"), "given_name");
        assert_invalid(person_name("\u{13A2}om", "Lee"), "given_name");
        // A Devanagari vowel sign on a Latin letter.
        assert_invalid(person_name("Ra\u{93E}m", "Lee"), "given_name");
    }

    #[test]
    fn names_refuse_hostile_input() {
        for (given, family, field) in [
            ("", "Lee", "given_name"),
            ("Jordan", "", "family_name"),
            ("   ", "Lee", "given_name"),
            ("\u{3000}", "Lee", "given_name"),
            (" \u{200B} ", "Lee", "given_name"),
            ("'", "Lee", "given_name"),
            ("-.,", "Lee", "given_name"),
        ] {
            let reason = assert_invalid(person_name(given, family), field);
            assert_eq!(reason, "is required", "{given:?} {family:?}");
        }
        assert!(assert_invalid(person_name("Jor\u{0}dan", "Lee"), "given_name").contains("control"));
        assert!(assert_invalid(person_name("Jordan", "Lee\r\n"), "family_name").contains("control"));
        assert!(assert_invalid(person_name("Jordan\u{85}", "Lee"), "given_name").contains("control"));
        let reason = assert_invalid(person_name(SQL, "Lee"), "given_name");
        assert!(reason.contains("found U+003B"), "{reason}");
        assert_invalid(person_name("Robert", "'); DROP TABLE flags;--"), "family_name");
        assert_invalid(person_name("Jordan 😀", "Lee"), "given_name");
        assert_invalid(person_name("Jordan", "Lee\u{1F1FA}\u{1F1F8}"), "family_name");
        assert_invalid(person_name("Jordan3", "Lee"), "given_name");
        assert_invalid(person_name("<script>", "Lee"), "given_name");
        assert_invalid(person_name("Jordan", "Lee|1990-01-01"), "family_name");
        assert_invalid(person_name("Jordan\u{E000}", "Lee"), "given_name");
    }

    #[test]
    fn names_zalgo_folds_to_its_letters() {
        assert_eq!(person_name(ZALGO, "Lee").unwrap(), "zalgo lee");
        // Marks with nothing under them are dropped.
        assert_eq!(person_name("\u{301}\u{301}Jordan", "Lee").unwrap(), "jordan lee");
        // Within the length limit, however many marks, the result is bounded.
        let heavy = format!("a{}", "\u{301}".repeat((MAX_KEY_INPUT_LEN - 1) / 2));
        assert_eq!(person_name(&heavy, "Lee").unwrap(), "a lee");
    }

    #[test]
    fn names_length_is_checked_before_anything_else() {
        let ten_kb = big(10 * 1024);
        assert_eq!(
            assert_invalid(person_name(&ten_kb, "Lee"), "given_name"),
            "must be at most 256 bytes, got 10240"
        );
        let one_mib = format!("{}\u{0}", ZALGO.repeat(1024 * 1024 / ZALGO.len()));
        assert!(assert_invalid(person_name("Jordan", &one_mib), "family_name").starts_with("must be at most"));
        assert!(assert_invalid(phonetic_name(&ten_kb, "Lee"), "given_name").starts_with("must be at most"));
        assert_eq!(
            person_name(&big(MAX_KEY_INPUT_LEN), "Lee").unwrap().len(),
            MAX_KEY_INPUT_LEN + 4
        );
        // 256 bytes of two-byte letters is fine, 257 bytes is not.
        assert!(person_name(&"é".repeat(MAX_KEY_INPUT_LEN / 2), "Lee").is_ok());
        assert_invalid(
            person_name(&format!("a{}", "é".repeat(MAX_KEY_INPUT_LEN / 2)), "Lee"),
            "given_name",
        );
    }

    #[test]
    fn phonetic_keys_forgive_spelling() {
        assert_eq!(
            phonetic_name("Jon", "Smith").unwrap(),
            phonetic_name("John", "Smyth").unwrap()
        );
        assert_eq!(phonetic_name("Jon", "Smith").unwrap(), "JN SM0");
        assert_eq!(
            phonetic_name("Catherine", "Schmidt").unwrap(),
            phonetic_name("Katherine", "Schmitt").unwrap()
        );
        assert_eq!(
            phonetic_name("José", "Núñez").unwrap(),
            phonetic_name("Jose", "Nunez").unwrap()
        );
        assert_eq!(
            phonetic_name("Sean", "O'Brien").unwrap(),
            phonetic_name("Sean", "OBrien").unwrap()
        );
        // The documented price of four-sound codes.
        assert_eq!(
            phonetic_name("Christopher", "Lee").unwrap(),
            phonetic_name("Christine", "Lee").unwrap()
        );
        assert_ne!(
            phonetic_name("John", "Smith").unwrap(),
            phonetic_name("Mary", "Jones").unwrap()
        );
    }

    #[test]
    fn phonetic_keys_of_non_latin_names_are_the_folded_name() {
        assert_eq!(
            phonetic_name("Иван", "Петров").unwrap(),
            person_name("Иван", "Петров").unwrap()
        );
        assert_eq!(phonetic_name("太郎", "山田").unwrap(), "太郎 山田");
        // A word Double Metaphone has no code for stands for itself.
        assert_eq!(phonetic_name("H", "Smith").unwrap(), "h SM0");
    }

    #[test]
    fn phonetic_keys_share_the_name_validation() {
        assert_invalid(phonetic_name("J\u{43E}rdan", "Lee"), "given_name");
        assert_invalid(phonetic_name("Jordan", ""), "family_name");
        assert_invalid(phonetic_name(SQL, "Lee"), "given_name");
        assert_invalid(phonetic_name("Jor\u{0}dan", "Lee"), "given_name");
        assert_eq!(
            phonetic_name(&format!("Jor{ZWSP}dan"), "Lee").unwrap(),
            phonetic_name("Jordan", "Lee").unwrap()
        );
        assert_eq!(
            phonetic_name(ZALGO, "Lee").unwrap(),
            phonetic_name("Zalgo", "Lee").unwrap()
        );
    }

    // ------------------------------------------------------------ birth dates

    #[test]
    fn birth_dates_are_strict_iso() {
        assert_eq!(
            birth_date("1990-01-02").unwrap(),
            Date::from_calendar_date(1990, Month::January, 2).unwrap()
        );
        assert_eq!(
            birth_date(" 2000-02-29 ").unwrap(),
            Date::from_calendar_date(2000, Month::February, 29).unwrap()
        );
        assert_eq!(birth_date("1880-01-01").unwrap().year(), 1880);
        for raw in [
            "1990-1-2",
            "1990/01/02",
            "19900102",
            "02-01-1990",
            "01/02/1990",
            "+1990-01-02",
            "1990-01-02T00:00",
            "１９９０-０１-０２",
            "1990-01-0２",
            "1990\u{2010}01\u{2010}02",
            "1990-01-02\u{200B}",
            "Jan 2 1990",
            "1990-00-10",
            "1990-13-01",
            "1990-01-00",
            "1990-01-32",
            "1990-02-30",
            "1900-02-29",
        ] {
            assert_invalid(birth_date(raw), "birth_date");
        }
        assert!(assert_invalid(birth_date("1879-12-31"), "birth_date").contains("1880"));
        assert!(assert_invalid(birth_date("0001-01-01"), "birth_date").contains("1880"));
    }

    #[test]
    fn birth_dates_refuse_hostile_input() {
        assert_eq!(assert_invalid(birth_date(""), "birth_date"), "is required");
        assert_eq!(assert_invalid(birth_date("   "), "birth_date"), "is required");
        assert!(assert_invalid(birth_date("1990-01-02\u{0}"), "birth_date").contains("control"));
        assert!(assert_invalid(birth_date("1990\u{0}01-02"), "birth_date").contains("control"));
        assert_invalid(birth_date(SQL), "birth_date");
        assert_invalid(birth_date("1990-01-02'; DROP TABLE flags; --"), "birth_date");
        assert_invalid(birth_date("1990-01-02😀"), "birth_date");
        assert_invalid(birth_date(&format!("{RLO}1990-01-02")), "birth_date");
        assert_invalid(birth_date("1\u{301}990-01-02"), "birth_date");
        assert_invalid(birth_date(ZALGO), "birth_date");
        assert_eq!(
            assert_invalid(birth_date(&"1".repeat(10 * 1024)), "birth_date"),
            "must be at most 256 bytes, got 10240"
        );
        assert!(assert_invalid(birth_date(&"\u{0}".repeat(1024 * 1024)), "birth_date").starts_with("must be at most"));
    }

    // ------------------------------------------------------------ addresses

    #[test]
    fn address_spellings_of_one_place_agree() {
        let long_form = address(&pine_street()).unwrap();
        assert_eq!(long_form, "1200 n pine st|4b|rolla|mo|65401");
        let short_form = PostalAddress {
            street: "1200 N Pine St".into(),
            unit: "#4b".into(),
            city: "ROLLA".into(),
            region: "MO".into(),
            postal_code: "65401".into(),
        };
        assert_eq!(address(&short_form).unwrap(), long_form);
        let unit_in_street = PostalAddress {
            street: "1200 N. Pine St. #4-B".into(),
            unit: String::new(),
            city: "Rolla".into(),
            region: "mo".into(),
            postal_code: "65401 1234".into(),
        };
        assert_eq!(address(&unit_in_street).unwrap(), long_form);
        let other_designators = PostalAddress {
            street: "１２００ NORTH PINE STR".into(),
            unit: "Unit 4 B".into(),
            city: "Rolla\u{200B}".into(),
            region: "M.O.".into(),
            postal_code: "654011234".into(),
        };
        assert_eq!(address(&other_designators).unwrap(), long_form);
        let suite = PostalAddress {
            street: "1200 North Pine Street Suite 4B".into(),
            ..short_form.clone()
        };
        assert!(address(&suite).is_err(), "unit given twice");
    }

    #[test]
    fn address_parts_fold_as_documented() {
        let saint = PostalAddress {
            street: "100 West Saint Louis Avenue".into(),
            unit: String::new(),
            city: "Saint Louis".into(),
            region: "Missouri".into(),
            postal_code: String::new(),
        };
        assert_eq!(address(&saint).unwrap(), "100 w st louis ave||st louis|mo|");
        let abbreviated = PostalAddress {
            street: "100 W St. Louis Ave".into(),
            city: "St. Louis".into(),
            region: "MO".into(),
            ..saint.clone()
        };
        assert_eq!(address(&abbreviated).unwrap(), address(&saint).unwrap());
        let ordinal = PostalAddress {
            street: "12 First Boulevard".into(),
            unit: String::new(),
            city: "Cape Girardeau".into(),
            region: "mo".into(),
            postal_code: "63701".into(),
        };
        assert_eq!(address(&ordinal).unwrap(), "12 1st blvd||cape girardeau|mo|63701");
        let apostrophe = PostalAddress {
            street: "5 Lake O'Fallon Drive".into(),
            unit: String::new(),
            city: "O’Fallon".into(),
            region: "District of Columbia".into(),
            postal_code: String::new(),
        };
        assert_eq!(address(&apostrophe).unwrap(), "5 lake ofallon dr||ofallon|dc|");
        let canada = PostalAddress {
            street: "24 Sussex Drive".into(),
            unit: String::new(),
            city: "Ottawa".into(),
            region: "ON".into(),
            postal_code: "K1M 1M4".into(),
        };
        assert_eq!(address(&canada).unwrap(), "24 sussex dr||ottawa|on|k1m1m4");
        let accents = PostalAddress {
            street: "3 Rue de l'Église".into(),
            unit: String::new(),
            city: "Québec".into(),
            region: "QC".into(),
            postal_code: String::new(),
        };
        assert_eq!(address(&accents).unwrap(), "3 rue de leglise||quebec|qc|");
    }

    #[test]
    fn address_output_cannot_be_forged_with_separators() {
        let pipes = PostalAddress {
            street: "1 Main St|x|y".into(),
            ..pine_street()
        };
        let normalised = address(&pipes).unwrap();
        assert_eq!(normalised.matches('|').count(), 4, "{normalised}");
        let sql = PostalAddress {
            street: format!("1 Main St{SQL}"),
            city: SQL.into(),
            ..pine_street()
        };
        // Punctuation is only a word break in an address: harmless, no panic.
        assert_eq!(
            address(&sql).unwrap(),
            "1 main st drop table flags|4b|drop table flags|mo|65401"
        );
    }

    #[test]
    fn address_refuses_hostile_input() {
        let base = pine_street();
        let with = |edit: &dyn Fn(&mut PostalAddress)| {
            let mut input = base.clone();
            edit(&mut input);
            address(&input)
        };
        assert_eq!(
            assert_invalid(with(&|a| a.street = String::new()), "address.street"),
            "is required"
        );
        assert_eq!(
            assert_invalid(with(&|a| a.street = " \t".into()), "address.street").as_str(),
            "must not contain control characters"
        );
        assert_eq!(
            assert_invalid(with(&|a| a.street = " \u{200B} ".into()), "address.street"),
            "is required"
        );
        assert_eq!(
            assert_invalid(with(&|a| a.city = "   ".into()), "address.city"),
            "is required"
        );
        assert_eq!(
            assert_invalid(with(&|a| a.city = "#".into()), "address.city"),
            "is required"
        );
        assert!(assert_invalid(with(&|a| a.city = "Rol\u{0}la".into()), "address.city").contains("control"));
        assert_invalid(with(&|a| a.unit = "Apt".into()), "address.unit");
        assert_invalid(with(&|a| a.street = "1200 N Pine St 🏠".into()), "address.street");
        assert_invalid(with(&|a| a.city = "R\u{43E}lla".into()), "address.city");
        assert_invalid(with(&|a| a.street = "1200 N P\u{456}ne St".into()), "address.street");
        assert_invalid(with(&|a| a.region = "Misery".into()), "address.region");
        assert_invalid(with(&|a| a.region = SQL.into()), "address.region");
        assert_invalid(with(&|a| a.region = "M\u{41E}".into()), "address.region");
        assert_invalid(with(&|a| a.postal_code = "6540".into()), "address.postal_code");
        assert_invalid(with(&|a| a.postal_code = SQL.into()), "address.postal_code");
        assert_invalid(with(&|a| a.postal_code = "65401\u{0}".into()), "address.postal_code");
        assert_invalid(with(&|a| a.postal_code = "65401😀".into()), "address.postal_code");
        for field in ["street", "unit", "city", "region", "postal_code"] {
            let ten_kb = big(10 * 1024);
            let one_mib = format!("{}\u{0}", big(1024 * 1024));
            for long in [&ten_kb, &one_mib] {
                let result = with(&|a| match field {
                    "street" => a.street = long.clone(),
                    "unit" => a.unit = long.clone(),
                    "city" => a.city = long.clone(),
                    "region" => a.region = long.clone(),
                    _ => a.postal_code = long.clone(),
                });
                let reason = assert_invalid(result, &format!("address.{field}"));
                assert!(reason.starts_with("must be at most 256 bytes"), "{reason}");
            }
        }
    }

    #[test]
    fn address_bidi_zero_width_and_zalgo_fold_away() {
        let hostile = PostalAddress {
            street: format!("{RLO}1200 N{ZWSP}orth Pi\u{301}\u{302}\u{303}ne Street\u{202C}"),
            unit: "Ap\u{200D}t 4B".into(),
            city: "R\u{334}\u{335}o\u{336}lla".into(),
            region: "\u{FEFF}MO".into(),
            postal_code: "６５４０１".into(),
        };
        assert_eq!(address(&hostile).unwrap(), "1200 n pine st|4b|rolla|mo|65401");
    }

    // ------------------------------------------------------------ tokens

    #[test]
    fn the_same_person_typed_differently_gives_the_same_tokens() {
        let key = key();
        let first = name_birth_date_tokens(&key, "José", "Núñez", "1990-01-02").unwrap();
        let second = name_birth_date_tokens(&key, "JOSE", "NUNEZ", " 1990-01-02").unwrap();
        assert_eq!(first, second);
        assert_eq!(first[0].kind, SubjectKeyKind::NameBirthDate);
        assert_eq!(first[1].kind, SubjectKeyKind::PhoneticNameBirthDate);
        assert_eq!(
            first[0],
            key.token(SubjectKeyKind::NameBirthDate, "jose nunez|1990-01-02")
        );
        assert_eq!(
            first[1],
            key.token(SubjectKeyKind::PhoneticNameBirthDate, "HS NNS|1990-01-02")
        );

        let misspelt = name_birth_date_tokens(&key, "Jon", "Smyth", "1985-07-04").unwrap();
        let correct = name_birth_date_tokens(&key, "John", "Smith", "1985-07-04").unwrap();
        assert_ne!(misspelt[0], correct[0], "exact tokens tell the spellings apart");
        assert_eq!(misspelt[1], correct[1], "phonetic tokens do not");
        let other_day = name_birth_date_tokens(&key, "John", "Smith", "1985-07-05").unwrap();
        assert_ne!(other_day[1], correct[1]);

        assert_eq!(
            phone_token(&key, "(573) 555-0100", "US").unwrap(),
            phone_token(&key, "+1 573 555 0100", "GB").unwrap()
        );
        assert_eq!(
            phone_token(&key, "573.555.0100", "US").unwrap(),
            key.token(SubjectKeyKind::Phone, "+15735550100")
        );
        assert_eq!(
            phone_token(&key, "５７３５５５０１００", "US").unwrap(),
            phone_token(&key, "1-573-555-0100", "US").unwrap()
        );

        let short_form = PostalAddress {
            street: "1200 N Pine St".into(),
            unit: "#4b".into(),
            city: "ROLLA".into(),
            region: "MO".into(),
            postal_code: "65401".into(),
        };
        assert_eq!(
            address_token(&key, &pine_street()).unwrap(),
            address_token(&key, &short_form).unwrap()
        );
        assert_eq!(
            address_token(&key, &short_form).unwrap(),
            key.token(SubjectKeyKind::Address, "1200 n pine st|4b|rolla|mo|65401")
        );
    }

    #[test]
    fn token_helpers_refuse_what_the_normalisers_refuse() {
        let key = key();
        assert_invalid(
            name_birth_date_tokens(&key, "J\u{43E}rdan", "Lee", "1990-01-02"),
            "given_name",
        );
        assert_invalid(
            name_birth_date_tokens(&key, "Jordan", "Lee", "1879-01-02"),
            "birth_date",
        );
        assert_invalid(name_birth_date_tokens(&key, "Jordan", "Lee", SQL), "birth_date");
        assert_invalid(phone_token(&key, SQL, "US"), "phone");
        assert_invalid(
            address_token(
                &key,
                &PostalAddress {
                    street: SQL.into(),
                    ..PostalAddress::default()
                },
            ),
            "address.city",
        );
    }
}
