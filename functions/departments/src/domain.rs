//! Departments: the pure rules (validation, partial updates, what a change means for the
//! name reservation). No I/O here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use vocelio_shared::extract::Patch;
use vocelio_shared::validate::{Violations, is_hex_color};
use vocelio_shared::{ApiResult, clock, ids, phone};

/// A department as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Department {
    pub id: String,
    pub name: String,
    /// E.164.
    pub phone_number: String,
    pub description: Option<String>,
    /// `#rrggbb` for the app's badges.
    pub color: Option<String>,
    /// False once deleted (soft delete keeps call history readable).
    pub is_active: bool,
    pub business_hours: Option<BusinessHours>,
    /// Agents registered to this department (kept exact by the agents function).
    #[serde(default)]
    pub agent_count: u32,
    pub created_at: String,
    pub updated_at: String,
}

/// Opening hours in one time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// An IANA zone name such as `America/New_York` or `UTC`.
    pub timezone: String,
    /// Opening intervals per weekday; a day not listed is closed.
    #[serde(default)]
    pub schedule: BTreeMap<Weekday, Vec<OpeningInterval>>,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// One opening interval, `HH:MM` to `HH:MM` (local time, close after open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningInterval {
    pub open: String,
    pub close: String,
}

/// `POST /api/departments`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDepartment {
    pub name: String,
    pub phone_number: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub business_hours: Option<BusinessHours>,
}

/// `PUT /api/departments/{id}`: only the fields sent change; `null` clears optional ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateDepartment {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub description: Patch<String>,
    #[serde(default)]
    pub color: Patch<String>,
    #[serde(default)]
    pub business_hours: Patch<BusinessHours>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

const NAME_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 1000;

impl CreateDepartment {
    /// Validates the request and builds the new department.
    pub fn into_department(
        self,
        region: phone::Region,
        now: OffsetDateTime,
    ) -> ApiResult<Department> {
        let mut v = Violations::new();
        let name = v.text("name", &self.name, 1, NAME_MAX);
        let phone_number = phone_field(&mut v, &self.phone_number, region);
        let description = self
            .description
            .map(|d| v.text("description", &d, 0, DESCRIPTION_MAX));
        let color = self.color.map(|c| color_field(&mut v, &c));
        if let Some(hours) = &self.business_hours {
            check_business_hours(&mut v, hours);
        }
        v.finish()?;
        let at = clock::rfc3339(now);
        Ok(Department {
            id: ids::new_id("dept"),
            name,
            phone_number,
            description: description.filter(|d| !d.is_empty()),
            color,
            is_active: true,
            business_hours: self.business_hours,
            agent_count: 0,
            created_at: at.clone(),
            updated_at: at,
        })
    }
}

/// What an update does to the department's name reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameChange {
    /// The reservation to release (the old name, when it was held).
    pub release: Option<String>,
    /// The reservation to take (the new name, when it must be held).
    pub reserve: Option<String>,
}

/// The outcome of applying an update to a department.
#[derive(Debug, Clone, PartialEq)]
pub struct Updated {
    pub department: Department,
    pub names: NameChange,
    /// True when the update deactivates the department (the same rules as delete).
    pub deactivates: bool,
}

impl UpdateDepartment {
    /// Validates the update and applies it to `current`.
    pub fn apply(
        self,
        current: &Department,
        region: phone::Region,
        now: OffsetDateTime,
    ) -> ApiResult<Updated> {
        let mut v = Violations::new();
        let nothing_sent = self.name.is_none()
            && self.phone_number.is_none()
            && !self.description.is_present()
            && !self.color.is_present()
            && !self.business_hours.is_present()
            && self.is_active.is_none();
        v.check(!nothing_sent, "body", "must change at least one field");
        let mut next = current.clone();
        if let Some(name) = &self.name {
            next.name = v.text("name", name, 1, NAME_MAX);
        }
        if let Some(phone) = &self.phone_number {
            next.phone_number = phone_field(&mut v, phone, region);
        }
        match self.description {
            Patch::Missing => {}
            Patch::Null => next.description = None,
            Patch::Value(d) => {
                next.description =
                    Some(v.text("description", &d, 0, DESCRIPTION_MAX)).filter(|d| !d.is_empty());
            }
        }
        match self.color {
            Patch::Missing => {}
            Patch::Null => next.color = None,
            Patch::Value(c) => next.color = Some(color_field(&mut v, &c)),
        }
        match self.business_hours {
            Patch::Missing => {}
            Patch::Null => next.business_hours = None,
            Patch::Value(hours) => {
                check_business_hours(&mut v, &hours);
                next.business_hours = Some(hours);
            }
        }
        if let Some(active) = self.is_active {
            next.is_active = active;
        }
        v.finish()?;
        next.updated_at = clock::rfc3339(now);
        let names = name_change(current, &next);
        let deactivates = current.is_active && !next.is_active;
        Ok(Updated {
            department: next,
            names,
            deactivates,
        })
    }
}

/// Active departments hold a reservation of their lowercased name; this says which
/// reservation to release and which to take when `before` becomes `after`.
pub fn name_change(before: &Department, after: &Department) -> NameChange {
    let key = |d: &Department| d.name.trim().to_lowercase();
    let same_name = key(before) == key(after);
    match (before.is_active, after.is_active) {
        (true, true) if same_name => NameChange {
            release: None,
            reserve: None,
        },
        (true, true) => NameChange {
            release: Some(before.name.clone()),
            reserve: Some(after.name.clone()),
        },
        (true, false) => NameChange {
            release: Some(before.name.clone()),
            reserve: None,
        },
        (false, true) => NameChange {
            release: None,
            reserve: Some(after.name.clone()),
        },
        (false, false) => NameChange {
            release: None,
            reserve: None,
        },
    }
}

fn phone_field(v: &mut Violations, raw: &str, region: phone::Region) -> String {
    match phone::normalize(raw, region) {
        Ok(number) => number.as_str().to_owned(),
        Err(e) => {
            v.add("phone_number", e.to_string());
            String::new()
        }
    }
}

fn color_field(v: &mut Violations, raw: &str) -> String {
    let color = raw.trim().to_ascii_lowercase();
    v.check(
        is_hex_color(&color),
        "color",
        "must be a hex colour such as #1e88e5",
    );
    color
}

fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60)
        .then_some(h * 60 + m)
        .or((h == 24 && m == 0).then_some(24 * 60))
}

fn check_business_hours(v: &mut Violations, hours: &BusinessHours) {
    let tz = hours.timezone.as_str();
    let tz_ok = (1..=64).contains(&tz.len())
        && tz.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && tz
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
    v.check(
        tz_ok,
        "business_hours.timezone",
        "must be an IANA time zone such as America/New_York",
    );
    for (day, intervals) in &hours.schedule {
        let day_name = serde_json::to_value(day)
            .ok()
            .and_then(|d| d.as_str().map(str::to_owned))
            .unwrap_or_default();
        let field = format!("business_hours.schedule.{day_name}");
        if intervals.len() > 4 {
            v.add(&field, "must have at most 4 intervals");
            continue;
        }
        let mut spans: Vec<(u32, u32)> = Vec::new();
        for (i, interval) in intervals.iter().enumerate() {
            match (minutes(&interval.open), minutes(&interval.close)) {
                (Some(open), Some(close)) if open < close => spans.push((open, close)),
                (Some(_), Some(_)) => v.add(&format!("{field}[{i}]"), "close must be after open"),
                _ => v.add(
                    &format!("{field}[{i}]"),
                    "times must be HH:MM (00:00-24:00)",
                ),
            }
        }
        spans.sort_unstable();
        if spans.windows(2).any(|w| w[1].0 < w[0].1) {
            v.add(&field, "intervals must not overlap");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phone::Region::US;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    fn create(json: serde_json::Value) -> ApiResult<Department> {
        serde_json::from_value::<CreateDepartment>(json)
            .map_err(vocelio_shared::ApiError::internal)?
            .into_department(US, NOW)
    }

    fn fields(err: vocelio_shared::ApiError) -> Vec<String> {
        err.body()["details"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_seeds_department_is_normalised() {
        let d = create(serde_json::json!({"name": " Sales ", "phone_number": "+1555-SALES-01"}))
            .unwrap();
        assert_eq!(d.name, "Sales");
        assert_eq!(d.phone_number, "+15557253701");
        assert!(d.is_active && d.id.starts_with("dept_"));
        assert_eq!(d.created_at, "2026-11-25T10:00:00.000Z");
    }

    #[test]
    fn every_bad_field_is_named() {
        let err = create(serde_json::json!({
            "name": "",
            "phone_number": "+1234567890",
            "color": "blue",
            "business_hours": {"timezone": "New York!", "schedule": {"monday": [{"open": "18:00", "close": "09:00"}]}}
        }))
        .unwrap_err();
        assert_eq!(
            fields(err),
            vec![
                "name",
                "phone_number",
                "color",
                "business_hours.timezone",
                "business_hours.schedule.monday[0]"
            ]
        );
    }

    #[test]
    fn business_hours_overlaps_are_refused() {
        let err = create(serde_json::json!({
            "name": "Support", "phone_number": "555-123-4567",
            "business_hours": {"timezone": "America/New_York", "schedule": {"friday": [
                {"open": "09:00", "close": "13:00"}, {"open": "12:00", "close": "17:00"}]}}
        }))
        .unwrap_err();
        assert_eq!(fields(err), vec!["business_hours.schedule.friday"]);
    }

    #[test]
    fn updates_are_partial_and_track_the_name_reservation() {
        let d = create(serde_json::json!({"name": "Sales", "phone_number": "555-123-4567", "description": "x"})).unwrap();
        let patch: UpdateDepartment =
            serde_json::from_value(serde_json::json!({"description": null})).unwrap();
        let up = patch.apply(&d, US, NOW).unwrap();
        assert_eq!(up.department.description, None);
        assert_eq!(up.department.name, "Sales");
        assert_eq!(
            up.names,
            NameChange {
                release: None,
                reserve: None
            }
        );

        let patch: UpdateDepartment =
            serde_json::from_value(serde_json::json!({"name": "SALES"})).unwrap();
        assert_eq!(
            patch.apply(&d, US, NOW).unwrap().names,
            NameChange {
                release: None,
                reserve: None
            }
        );

        let patch: UpdateDepartment =
            serde_json::from_value(serde_json::json!({"name": "Billing"})).unwrap();
        let up = patch.apply(&d, US, NOW).unwrap();
        assert_eq!(up.names.release.as_deref(), Some("Sales"));
        assert_eq!(up.names.reserve.as_deref(), Some("Billing"));

        let patch: UpdateDepartment =
            serde_json::from_value(serde_json::json!({"is_active": false})).unwrap();
        let up = patch.apply(&d, US, NOW).unwrap();
        assert!(up.deactivates);
        assert_eq!(up.names.reserve, None);

        let patch = UpdateDepartment::default();
        assert_eq!(fields(patch.apply(&d, US, NOW).unwrap_err()), vec!["body"]);
    }
}
