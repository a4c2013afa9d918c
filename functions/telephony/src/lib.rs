//! The telephony adapter over Twilio. This release: the pure core the endpoints will build
//! on — a TwiML builder that escapes every value, `X-Twilio-Signature` validation (form and
//! JSON variants, the port rules of Twilio's own validators), status-callback parsing with
//! the ordering rules that keep a call from moving backwards, and Twilio's error JSON.

pub mod callback;
pub mod signature;
pub mod twilio_error;
pub mod twiml;
