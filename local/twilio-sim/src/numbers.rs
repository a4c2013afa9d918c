//! The simulator's phone-number inventory: a fixed, deterministic pool per country and
//! number type, searched by `AvailablePhoneNumbers` and bought by `IncomingPhoneNumbers`.
//!
//! - US/CA local (`Local`): `+1{area}55501NN`, NN = 00–99, for any North American area code
//!   (`[2-9][0-8][0-9]`, not `N11`, not a toll-free prefix). The area codes of [`AREAS`]
//!   carry their city; CA serves only its own area codes there, US every other one. Without
//!   `AreaCode` a search walks the country's listed area codes in order.
//! - US toll-free (`TollFree`): `+1{8xx}55501NN` for 800, 833, 844, 855, 866, 877, 888.
//! - GB local: `+44 20 7946 01NN` (London) and `+44 161 496 01NN` (Manchester); GB toll-free
//!   `+44 808 157 01NN` (Ofcom's ranges for drama, so never a real line).
//!
//! `555-01NN` is the North American range reserved for fiction, and no pool number ends in
//! 0002, 0003 or 0004 — the endings that make a dialled number busy, unanswered or failed.

/// `Local` or `TollFree`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberKind {
    Local,
    TollFree,
}

impl NumberKind {
    /// The IncomingPhoneNumber `type`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NumberKind::Local => "local",
            NumberKind::TollFree => "toll-free",
        }
    }
}

/// What a number can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capabilities {
    pub voice: bool,
    pub sms: bool,
    pub mms: bool,
    pub fax: bool,
}

/// One number of the pool, with the metadata a search shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Available {
    pub phone_number: String,
    pub kind: NumberKind,
    pub iso_country: &'static str,
    pub locality: Option<&'static str>,
    pub region: Option<&'static str>,
    pub postal_code: Option<&'static str>,
    pub rate_center: Option<&'static str>,
    pub lata: Option<&'static str>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub capabilities: Capabilities,
}

/// A North American area code the pool knows the city of.
struct Area {
    country: &'static str,
    code: &'static str,
    locality: &'static str,
    region: &'static str,
    postal_code: &'static str,
    rate_center: &'static str,
    lata: Option<&'static str>,
    latitude: f64,
    longitude: f64,
}

/// `area!(country, code, locality, region, postal code, rate center, lata, (lat, long))`.
macro_rules! area {
    ($country:literal, $code:literal, $locality:literal, $region:literal, $postal:literal, $rate:literal, $lata:expr, ($lat:literal, $long:literal)) => {
        Area {
            country: $country,
            code: $code,
            locality: $locality,
            region: $region,
            postal_code: $postal,
            rate_center: $rate,
            lata: $lata,
            latitude: $lat,
            longitude: $long,
        }
    };
}

/// Known area codes, in search order per country.
const AREAS: [Area; 11] = [
    area!(
        "US",
        "415",
        "San Francisco",
        "CA",
        "94105",
        "SNFC CNTRL",
        Some("722"),
        (37.7749, -122.4194)
    ),
    area!(
        "US",
        "212",
        "New York",
        "NY",
        "10001",
        "NWYRCYZN01",
        Some("132"),
        (40.7506, -73.9972)
    ),
    area!(
        "US",
        "312",
        "Chicago",
        "IL",
        "60601",
        "CHICAGO",
        Some("358"),
        (41.8858, -87.6181)
    ),
    area!(
        "US",
        "213",
        "Los Angeles",
        "CA",
        "90012",
        "LSAN DA 01",
        Some("730"),
        (34.0522, -118.2437)
    ),
    area!(
        "US",
        "617",
        "Boston",
        "MA",
        "02108",
        "BOSTON",
        Some("128"),
        (42.3601, -71.0589)
    ),
    area!(
        "US",
        "206",
        "Seattle",
        "WA",
        "98101",
        "SEATTLE",
        Some("674"),
        (47.6062, -122.3321)
    ),
    area!(
        "US",
        "512",
        "Austin",
        "TX",
        "78701",
        "AUSTIN",
        Some("558"),
        (30.2672, -97.7431)
    ),
    area!(
        "US",
        "305",
        "Miami",
        "FL",
        "33130",
        "MIAMI",
        Some("460"),
        (25.7617, -80.1918)
    ),
    area!(
        "CA",
        "416",
        "Toronto",
        "ON",
        "M5H 2N2",
        "TORONTO",
        None,
        (43.6532, -79.3832)
    ),
    area!(
        "CA",
        "604",
        "Vancouver",
        "BC",
        "V6B 1A1",
        "VANCOUVER",
        None,
        (49.2827, -123.1207)
    ),
    area!(
        "CA",
        "514",
        "Montreal",
        "QC",
        "H2Y 1C6",
        "MONTREAL",
        None,
        (45.5017, -73.5673)
    ),
];

/// North American toll-free prefixes, in search order.
pub(crate) const TOLL_FREE_PREFIXES: [&str; 7] = ["800", "833", "844", "855", "866", "877", "888"];

/// GB local ranges: E.164 prefix (the number is the prefix and two digits) and the city.
const GB_LOCAL: [(&str, &str); 2] = [("+4420794601", "London"), ("+4416149601", "Manchester")];
/// GB toll-free range (0808 157 01NN).
const GB_TOLL_FREE: &str = "+4480815701";

/// Countries with a pool: ISO code, name, whether it has toll-free numbers.
pub(crate) const COUNTRIES: [(&str, &str, bool); 3] = [
    ("US", "United States", true),
    ("CA", "Canada", false),
    ("GB", "United Kingdom", true),
];

const NANP_LOCAL: Capabilities = Capabilities {
    voice: true,
    sms: true,
    mms: true,
    fax: false,
};
const NANP_TOLL_FREE: Capabilities = Capabilities {
    voice: true,
    sms: true,
    mms: false,
    fax: false,
};
const VOICE_ONLY: Capabilities = Capabilities {
    voice: true,
    sms: false,
    mms: false,
    fax: false,
};

/// Why a search has no pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SearchError {
    /// The country (or this type of number in it) is not offered: Twilio's 404.
    NotFound,
    /// `AreaCode` is not a North American area code (or not a toll-free prefix): 21451.
    InvalidAreaCode,
}

/// Whether `code` is a North American area code the pool serves as local.
fn is_local_area(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 3
        && b.iter().all(u8::is_ascii_digit)
        && (b'2'..=b'9').contains(&b[0])
        && b[1] != b'9'
        && !(b[1] == b'1' && b[2] == b'1')
        && !TOLL_FREE_PREFIXES.contains(&code)
}

/// The country whose pool holds the local area code `code`.
fn area_country(code: &str) -> &'static str {
    AREAS
        .iter()
        .find(|a| a.code == code)
        .map_or("US", |a| a.country)
}

fn nanp_local(code: &str, suffix: u32) -> Available {
    let known = AREAS.iter().find(|a| a.code == code);
    Available {
        phone_number: format!("+1{code}55501{suffix:02}"),
        kind: NumberKind::Local,
        iso_country: area_country(code),
        locality: known.map(|a| a.locality),
        region: known.map(|a| a.region),
        postal_code: known.map(|a| a.postal_code),
        rate_center: known.map(|a| a.rate_center),
        lata: known.and_then(|a| a.lata),
        latitude: known.map(|a| a.latitude),
        longitude: known.map(|a| a.longitude),
        capabilities: NANP_LOCAL,
    }
}

fn plain(
    phone_number: String,
    kind: NumberKind,
    country: &'static str,
    locality: Option<&'static str>,
    capabilities: Capabilities,
) -> Available {
    Available {
        phone_number,
        kind,
        iso_country: country,
        locality,
        region: None,
        postal_code: None,
        rate_center: None,
        lata: None,
        latitude: None,
        longitude: None,
        capabilities,
    }
}

/// The hundred numbers of a range (suffixes 00–99).
fn hundred(make: impl FnMut(u32) -> Available) -> impl Iterator<Item = Available> {
    (0..100).map(make)
}

/// The pool a search walks, in order. `area_code` applies to US/CA (it is ignored
/// elsewhere, as Twilio documents it for US/CA only).
pub(crate) fn pool(
    country: &str,
    kind: NumberKind,
    area_code: Option<&str>,
) -> Result<Vec<Available>, SearchError> {
    match (country, kind) {
        ("US" | "CA", NumberKind::Local) => {
            let codes: Vec<&str> = match area_code {
                Some(code) if !is_local_area(code) => return Err(SearchError::InvalidAreaCode),
                Some(code) if area_country(code) == country => vec![code],
                Some(_) => Vec::new(),
                None => AREAS
                    .iter()
                    .filter(|a| a.country == country)
                    .map(|a| a.code)
                    .collect(),
            };
            Ok(codes
                .into_iter()
                .flat_map(|code| hundred(move |n| nanp_local(code, n)))
                .collect())
        }
        ("US", NumberKind::TollFree) => {
            let prefixes: Vec<&str> = match area_code {
                Some(code) if TOLL_FREE_PREFIXES.contains(&code) => vec![code],
                Some(_) => return Err(SearchError::InvalidAreaCode),
                None => TOLL_FREE_PREFIXES.to_vec(),
            };
            Ok(prefixes
                .into_iter()
                .flat_map(|p| {
                    hundred(move |n| {
                        plain(
                            format!("+1{p}55501{n:02}"),
                            NumberKind::TollFree,
                            "US",
                            None,
                            NANP_TOLL_FREE,
                        )
                    })
                })
                .collect())
        }
        ("GB", NumberKind::Local) => Ok(GB_LOCAL
            .iter()
            .flat_map(|(prefix, city)| {
                hundred(move |n| {
                    plain(
                        format!("{prefix}{n:02}"),
                        NumberKind::Local,
                        "GB",
                        Some(city),
                        VOICE_ONLY,
                    )
                })
            })
            .collect()),
        ("GB", NumberKind::TollFree) => Ok(hundred(|n| {
            plain(
                format!("{GB_TOLL_FREE}{n:02}"),
                NumberKind::TollFree,
                "GB",
                None,
                VOICE_ONLY,
            )
        })
        .collect()),
        _ => Err(SearchError::NotFound),
    }
}

/// The pool of a buy by `AreaCode`: the toll-free pool of a toll-free prefix, else the
/// local pool of the area code's country.
pub(crate) fn pool_for_area(code: &str) -> Result<Vec<Available>, SearchError> {
    if TOLL_FREE_PREFIXES.contains(&code) {
        pool("US", NumberKind::TollFree, Some(code))
    } else if is_local_area(code) {
        pool(area_country(code), NumberKind::Local, Some(code))
    } else {
        Err(SearchError::InvalidAreaCode)
    }
}

/// The pool entry of `number`, if it is one.
pub(crate) fn lookup(number: &str) -> Option<Available> {
    let (prefix, last) = number.split_at_checked(number.len().checked_sub(2)?)?;
    let suffix: u32 = last
        .parse()
        .ok()
        .filter(|_| last.bytes().all(|b| b.is_ascii_digit()))?;
    if let Some(rest) = prefix.strip_prefix("+1")
        && let Some(code) = rest.strip_suffix("55501")
        && code.len() == 3
    {
        if TOLL_FREE_PREFIXES.contains(&code) {
            return pool("US", NumberKind::TollFree, Some(code))
                .ok()?
                .into_iter()
                .find(|a| a.phone_number == number);
        }
        if is_local_area(code) {
            return Some(nanp_local(code, suffix));
        }
        return None;
    }
    ["GB"]
        .into_iter()
        .flat_map(|country| {
            [NumberKind::Local, NumberKind::TollFree]
                .into_iter()
                .filter_map(move |kind| pool(country, kind, None).ok())
        })
        .flatten()
        .find(|a| a.phone_number == number)
}

/// A `Contains` pattern: digits, letters (as on a phone keypad) and `*` (any one digit); 2
/// to 16 characters after an optional leading `+`. `None` when malformed.
pub(crate) fn pattern(raw: &str) -> Option<Vec<Option<u8>>> {
    let raw = raw.strip_prefix('+').unwrap_or(raw);
    if !(2..=16).contains(&raw.chars().count()) {
        return None;
    }
    raw.chars()
        .map(|c| match c.to_ascii_lowercase() {
            '*' => Some(None),
            d @ '0'..='9' => Some(Some(d as u8 - b'0')),
            'a'..='c' => Some(Some(2)),
            'd'..='f' => Some(Some(3)),
            'g'..='i' => Some(Some(4)),
            'j'..='l' => Some(Some(5)),
            'm'..='o' => Some(Some(6)),
            'p'..='s' => Some(Some(7)),
            't'..='v' => Some(Some(8)),
            'w'..='z' => Some(Some(9)),
            _ => None,
        })
        .collect()
}

/// Whether the digits of `number` hold `pattern` anywhere.
pub(crate) fn matches(number: &str, pattern: &[Option<u8>]) -> bool {
    let digits: Vec<u8> = number
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    digits.windows(pattern.len()).any(|window| {
        window
            .iter()
            .zip(pattern)
            .all(|(d, p)| p.is_none_or(|p| p == *d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_deterministic_and_never_hit_the_outcome_endings() {
        let sf = pool("US", NumberKind::Local, Some("415")).expect("415");
        assert_eq!(sf.len(), 100);
        assert_eq!(sf[0].phone_number, "+14155550100");
        assert_eq!(sf[99].phone_number, "+14155550199");
        assert_eq!(sf[0].locality, Some("San Francisco"));
        let all = ["US", "CA", "GB"]
            .into_iter()
            .flat_map(|c| {
                [NumberKind::Local, NumberKind::TollFree]
                    .into_iter()
                    .filter_map(move |k| pool(c, k, None).ok())
            })
            .flatten()
            .collect::<Vec<_>>();
        assert!(all.len() > 1000);
        for a in &all {
            assert!(crate::util::is_e164(&a.phone_number), "{a:?}");
            assert!(
                !["0002", "0003", "0004"]
                    .iter()
                    .any(|e| a.phone_number.ends_with(e)),
                "{a:?}"
            );
            assert_eq!(lookup(&a.phone_number).as_ref(), Some(a));
        }
        assert_eq!(
            pool("US", NumberKind::Local, Some("416")).expect("416"),
            vec![]
        );
        assert_eq!(
            pool("CA", NumberKind::Local, Some("416"))
                .expect("416")
                .len(),
            100
        );
        assert_eq!(
            pool("US", NumberKind::Local, Some("911")),
            Err(SearchError::InvalidAreaCode)
        );
        assert_eq!(
            pool("US", NumberKind::Local, Some("800")),
            Err(SearchError::InvalidAreaCode)
        );
        assert_eq!(
            pool("US", NumberKind::TollFree, Some("415")),
            Err(SearchError::InvalidAreaCode)
        );
        assert_eq!(
            pool("FR", NumberKind::Local, None),
            Err(SearchError::NotFound)
        );
        assert_eq!(
            pool("CA", NumberKind::TollFree, None),
            Err(SearchError::NotFound)
        );
        let unknown = lookup("+19075550142").expect("any area code");
        assert_eq!((unknown.iso_country, unknown.locality), ("US", None));
        assert_eq!(lookup("+14155550200"), None);
        assert_eq!(lookup("+14155551234"), None);
        assert_eq!(
            lookup("+442079460100").map(|a| a.locality),
            Some(Some("London"))
        );
    }

    #[test]
    fn contains_patterns_match_anywhere() {
        let p = pattern("555*1*").expect("pattern");
        assert!(matches("+14155550112", &p));
        assert!(!matches("+14155550212", &p));
        assert!(matches(
            "+14155550167",
            &pattern("+14155550167").expect("full")
        ));
        // Keypad letters: 0167 has no letters; "JK" is 55.
        assert!(matches("+14155550100", &pattern("jk").expect("letters")));
        assert_eq!(pattern("1"), None);
        assert_eq!(pattern("12-3"), None);
        assert_eq!(pattern(&"1".repeat(17)), None);
    }
}
