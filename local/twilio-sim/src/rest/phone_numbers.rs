//! `AvailablePhoneNumbers` (search the simulator's pool, [`crate::numbers`]) and
//! `IncomingPhoneNumbers` (buy, list, fetch, update, release). A bought number belongs to
//! the account in whose path it was bought; inbound calls to it run its `VoiceUrl` for that
//! account, and that account may call from it.

use axum::http::StatusCode;

use super::accounts::friendly_name;
use super::params::invalid;
use super::{Params, Reply, Request, render};
use crate::errors::{
    ApiError, INVALID_APPLICATION, INVALID_AREA_CODE, INVALID_CALLBACK_URL, INVALID_PARAMETER,
    INVALID_PHONE_NUMBER, NO_NUMBERS_IN_AREA_CODE, NUMBER_NOT_AVAILABLE,
};
use crate::numbers::{self, Available, NumberKind, SearchError};
use crate::state::{Account, PhoneNumber};
use crate::twiml::HttpMethod;
use crate::util::{self, is_e164, is_sid};

/// The largest `PageSize` of a search.
pub(crate) const MAX_PAGE_SIZE: i64 = 1000;

/// `GET AvailablePhoneNumbers.json`: the countries with a pool.
pub(crate) fn countries(request: &Request<'_>) -> Result<Reply, ApiError> {
    let countries: Vec<_> = numbers::COUNTRIES
        .iter()
        .map(|(code, name, toll_free)| render::country(&request.account, code, name, *toll_free))
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        serde_json::json!({ "countries": countries, "uri": request.path }),
    ))
}

/// `GET AvailablePhoneNumbers/{IsoCountry}.json`.
pub(crate) fn country(request: &Request<'_>, code: &str) -> Result<Reply, ApiError> {
    numbers::COUNTRIES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(code, name, toll_free)| {
            Reply::Json(
                StatusCode::OK,
                render::country(&request.account, code, name, *toll_free),
            )
        })
        .ok_or_else(|| ApiError::not_found(request.path))
}

fn area_error(error: SearchError, request: &Request<'_>, area: Option<&str>) -> ApiError {
    match error {
        SearchError::NotFound => ApiError::not_found(request.path),
        SearchError::InvalidAreaCode => ApiError::bad_request(
            INVALID_AREA_CODE,
            format!(
                "AreaCode {} is not a valid area code for these numbers",
                area.unwrap_or_default()
            ),
        ),
    }
}

/// `GET AvailablePhoneNumbers/{IsoCountry}/Local.json` or `…/TollFree.json`: the pool's
/// numbers nobody holds, in pool order, filtered by `AreaCode` (US/CA; 400 21451 when not
/// an area code), `Contains` (2–16 of digits, letters as on a keypad, `*` for any digit;
/// anywhere in the number; else 400 20001), `VoiceEnabled`/`SmsEnabled`/`MmsEnabled`/
/// `FaxEnabled`, `InRegion`/`InLocality`/`InPostalCode`/`InRateCenter`/`InLata` (exact,
/// any case), at most `PageSize` (default 50, 1–1000). Near*/Distance/Beta/Exclude* are
/// checked and ignored. An unknown country (or no toll-free pool) is 404 20404.
pub(crate) fn search(
    request: &Request<'_>,
    country: &str,
    kind: NumberKind,
) -> Result<Reply, ApiError> {
    let params = &request.params;
    let area = params.get("AreaCode");
    let pool = numbers::pool(&country.to_ascii_uppercase(), kind, area)
        .map_err(|e| area_error(e, request, area))?;
    let contains = params
        .get("Contains")
        .map(|raw| numbers::pattern(raw).ok_or_else(|| invalid("Contains", raw)))
        .transpose()?;
    let size = params.int("PageSize")?.unwrap_or(50);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(invalid("PageSize", &size.to_string()));
    }
    let voice = params.bool("VoiceEnabled")?;
    let sms = params.bool("SmsEnabled")?;
    let mms = params.bool("MmsEnabled")?;
    let fax = params.bool("FaxEnabled")?;
    for name in [
        "Beta",
        "ExcludeAllAddressRequired",
        "ExcludeLocalAddressRequired",
        "ExcludeForeignAddressRequired",
    ] {
        params.bool(name)?;
    }
    params.int("Distance")?;
    let text = |name: &str, value: Option<&str>| {
        params
            .get(name)
            .is_none_or(|wanted| value.is_some_and(|v| v.eq_ignore_ascii_case(wanted)))
    };
    let state = request.sim.lock();
    let items: Vec<_> = pool
        .iter()
        .filter(|a| !state.is_taken(&a.phone_number))
        .filter(|a| {
            contains
                .as_deref()
                .is_none_or(|p| numbers::matches(&a.phone_number, p))
        })
        .filter(|a| voice.is_none_or(|v| a.capabilities.voice == v))
        .filter(|a| sms.is_none_or(|v| a.capabilities.sms == v))
        .filter(|a| mms.is_none_or(|v| a.capabilities.mms == v))
        .filter(|a| fax.is_none_or(|v| a.capabilities.fax == v))
        .filter(|a| {
            text("InRegion", a.region)
                && text("InLocality", a.locality)
                && text("InPostalCode", a.postal_code)
                && text("InRateCenter", a.rate_center)
                && text("InLata", a.lata)
        })
        .take(size as usize)
        .map(render::available)
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        render::sized_page(
            request.path,
            "available_phone_numbers",
            items,
            size as usize,
        ),
    ))
}

/// The settings a buy or an update may carry.
#[derive(Debug, Default)]
struct Settings {
    voice_url: Option<Option<String>>,
    voice_method: Option<HttpMethod>,
    voice_fallback_url: Option<Option<String>>,
    voice_fallback_method: Option<HttpMethod>,
    voice_caller_id_lookup: Option<bool>,
    status_callback: Option<Option<String>>,
    status_callback_method: Option<HttpMethod>,
    sms_url: Option<Option<String>>,
    sms_method: Option<HttpMethod>,
    sms_fallback_url: Option<Option<String>>,
    sms_fallback_method: Option<HttpMethod>,
}

impl Settings {
    /// URLs must be absolute http(s) (400 21502 "Invalid callback url"; an empty value
    /// clears one), methods GET/POST, `VoiceCallerIdLookup` a boolean (400 20001);
    /// `VoiceApplicationSid` is refused with 21218 (the simulator has no applications).
    fn read(params: &Params) -> Result<Self, ApiError> {
        if let Some(application) = params.get("VoiceApplicationSid") {
            return Err(ApiError::bad_request(
                INVALID_APPLICATION,
                format!(
                    "VoiceApplicationSid {application} was not found: the simulator has no TwiML applications; give VoiceUrl"
                ),
            ));
        }
        let url = |name: &str| params.url_setting(name, INVALID_CALLBACK_URL);
        Ok(Self {
            voice_url: url("VoiceUrl")?,
            voice_method: params.method_setting("VoiceMethod")?,
            voice_fallback_url: url("VoiceFallbackUrl")?,
            voice_fallback_method: params.method_setting("VoiceFallbackMethod")?,
            voice_caller_id_lookup: params.bool("VoiceCallerIdLookup")?,
            status_callback: url("StatusCallback")?,
            status_callback_method: params.method_setting("StatusCallbackMethod")?,
            sms_url: url("SmsUrl")?,
            sms_method: params.method_setting("SmsMethod")?,
            sms_fallback_url: url("SmsFallbackUrl")?,
            sms_fallback_method: params.method_setting("SmsFallbackMethod")?,
        })
    }

    fn apply(self, number: &mut PhoneNumber) {
        fn set<T>(target: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *target = value;
            }
        }
        set(&mut number.voice_url, self.voice_url);
        set(&mut number.voice_method, self.voice_method);
        set(&mut number.voice_fallback_url, self.voice_fallback_url);
        set(
            &mut number.voice_fallback_method,
            self.voice_fallback_method,
        );
        set(
            &mut number.voice_caller_id_lookup,
            self.voice_caller_id_lookup,
        );
        set(&mut number.status_callback, self.status_callback);
        set(
            &mut number.status_callback_method,
            self.status_callback_method,
        );
        set(&mut number.sms_url, self.sms_url);
        set(&mut number.sms_method, self.sms_method);
        set(&mut number.sms_fallback_url, self.sms_fallback_url);
        set(&mut number.sms_fallback_method, self.sms_fallback_method);
    }
}

/// A new IncomingPhoneNumber of `account` for the pool number `available`, default settings.
pub(crate) fn new_number(account: &str, available: &Available) -> PhoneNumber {
    let now = util::now();
    PhoneNumber {
        sid: util::new_sid("PN"),
        account_sid: account.to_owned(),
        phone_number: available.phone_number.clone(),
        friendly_name: util::formatted(&available.phone_number),
        kind: available.kind,
        capabilities: available.capabilities,
        voice_url: None,
        voice_method: HttpMethod::Post,
        voice_fallback_url: None,
        voice_fallback_method: HttpMethod::Post,
        voice_caller_id_lookup: false,
        status_callback: None,
        status_callback_method: HttpMethod::Post,
        sms_url: None,
        sms_method: HttpMethod::Post,
        sms_fallback_url: None,
        sms_fallback_method: HttpMethod::Post,
        created: now,
        updated: now,
    }
}

/// The pool number `phone_number` if nobody holds it: 400 21421 when it is not E.164, 400
/// 21422 when it is not in the pool or is taken.
pub(crate) fn available_number(
    state: &crate::state::State,
    phone_number: &str,
) -> Result<Available, ApiError> {
    if !is_e164(phone_number) {
        return Err(ApiError::bad_request(
            INVALID_PHONE_NUMBER,
            format!("PhoneNumber {phone_number} is invalid"),
        ));
    }
    numbers::lookup(phone_number)
        .filter(|_| !state.is_taken(phone_number))
        .ok_or_else(|| {
            ApiError::bad_request(
                NUMBER_NOT_AVAILABLE,
                format!("PhoneNumber {phone_number} is not available"),
            )
        })
}

/// `POST IncomingPhoneNumbers.json`: buys `PhoneNumber` (E.164; 400 21421 otherwise; 400
/// 21422 when it is not in the pool or somebody holds it) or the first free number of
/// `AreaCode` (US/CA area code or toll-free prefix; 400 21451 when invalid, 400 21452 when
/// none is left); one of the two is required (400 20001). Settings: `FriendlyName` (≤ 64,
/// default the formatted number), `VoiceUrl`, `VoiceMethod`, `VoiceFallbackUrl`,
/// `VoiceFallbackMethod`, `StatusCallback`, `StatusCallbackMethod`, `SmsUrl`, `SmsMethod`,
/// `SmsFallbackUrl`, `SmsFallbackMethod`, `VoiceCallerIdLookup`. 201.
pub(crate) fn buy(request: &Request<'_>) -> Result<Reply, ApiError> {
    let params = &request.params;
    let name = friendly_name(request)?;
    let settings = Settings::read(params)?;
    let phone = params.get("PhoneNumber");
    let area = params.get("AreaCode");
    let mut state = request.sim.lock();
    let available = match (phone, area) {
        (Some(phone), _) => available_number(&state, phone)?,
        (None, Some(area)) => numbers::pool_for_area(area)
            .map_err(|e| area_error(e, request, Some(area)))?
            .into_iter()
            .find(|a| !state.is_taken(&a.phone_number))
            .ok_or_else(|| {
                ApiError::bad_request(
                    NO_NUMBERS_IN_AREA_CODE,
                    format!("No phone numbers found in area code {area}"),
                )
            })?,
        (None, None) => {
            return Err(ApiError::bad_request(
                INVALID_PARAMETER,
                "A PhoneNumber or an AreaCode is required",
            ));
        }
    };
    let mut number = new_number(&request.account, &available);
    if let Some(name) = name {
        number.friendly_name = name;
    }
    settings.apply(&mut number);
    let body = render::incoming_number(&number);
    state.numbers.push(number);
    Ok(Reply::Json(StatusCode::CREATED, body))
}

/// `GET IncomingPhoneNumbers.json?PhoneNumber=&FriendlyName=`: the account's numbers, in
/// purchase order. `PhoneNumber` may be partial, with `*` for any digit.
pub(crate) fn list(request: &Request<'_>) -> Result<Reply, ApiError> {
    let params = &request.params;
    let name = params.get("FriendlyName");
    let phone = params.get("PhoneNumber");
    let pattern = phone.and_then(numbers::pattern);
    params.bool("Beta")?;
    let state = request.sim.lock();
    let items = state
        .numbers
        .iter()
        .filter(|n| n.account_sid == request.account)
        .filter(|n| name.is_none_or(|wanted| n.friendly_name == wanted))
        .filter(|n| {
            phone.is_none_or(|wanted| {
                n.phone_number == wanted
                    || pattern
                        .as_deref()
                        .is_some_and(|p| numbers::matches(&n.phone_number, p))
            })
        })
        .map(render::incoming_number)
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        render::page(request.path, "incoming_phone_numbers", items),
    ))
}

/// The account's number `sid`, 404 otherwise (another account's number included).
fn owned<'s>(
    state: &'s crate::state::State,
    request: &Request<'_>,
    sid: &str,
) -> Result<&'s PhoneNumber, ApiError> {
    state
        .number(sid)
        .filter(|n| n.account_sid == request.account)
        .ok_or_else(|| ApiError::not_found(request.path))
}

/// `GET IncomingPhoneNumbers/{PN}.json`.
pub(crate) fn fetch(request: &Request<'_>, sid: &str) -> Result<Reply, ApiError> {
    let state = request.sim.lock();
    let number = owned(&state, request, sid)?;
    Ok(Reply::Json(StatusCode::OK, render::incoming_number(number)))
}

/// `POST IncomingPhoneNumbers/{PN}.json`: the settings of [`buy`] (an empty URL clears it)
/// and `AccountSid`, which moves the number to another account of the family: only with the
/// main account's credentials (401 20003 otherwise), to the main account or one of its
/// active subaccounts (400 20001 otherwise).
pub(crate) fn update(request: &Request<'_>, sid: &str) -> Result<Reply, ApiError> {
    let params = &request.params;
    let name = friendly_name(request)?;
    let settings = Settings::read(params)?;
    let mut state = request.sim.lock();
    let current = owned(&state, request, sid)?.account_sid.clone();
    let target = match params.get("AccountSid") {
        Some(target) if target != current => {
            if !state.account(&request.user).is_some_and(Account::is_main) {
                return Err(ApiError::authenticate());
            }
            let family = is_sid("AC", target)
                && state.account(target).is_some_and(|a| {
                    a.is_active() && (a.sid == request.user || a.owner == request.user)
                });
            if !family {
                return Err(ApiError::bad_request(
                    INVALID_PARAMETER,
                    format!(
                        "AccountSid {target} is not the main account or one of its active subaccounts"
                    ),
                ));
            }
            Some(target.to_owned())
        }
        _ => None,
    };
    let number = state
        .number_mut(sid)
        .ok_or_else(|| ApiError::not_found(request.path))?;
    if let Some(name) = name {
        number.friendly_name = name;
    }
    if let Some(target) = target {
        number.account_sid = target;
    }
    settings.apply(number);
    number.updated = util::now();
    Ok(Reply::Json(StatusCode::OK, render::incoming_number(number)))
}

/// `DELETE IncomingPhoneNumbers/{PN}.json`: releases the number (back to the pool). 204.
pub(crate) fn release(request: &Request<'_>, sid: &str) -> Result<Reply, ApiError> {
    let mut state = request.sim.lock();
    owned(&state, request, sid)?;
    state.numbers.retain(|n| n.sid != sid);
    Ok(Reply::NoContent)
}
