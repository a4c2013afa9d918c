//! The telephony adapter over Twilio. This release: the pure core the endpoints will build
//! on — a TwiML builder that escapes every value, `X-Twilio-Signature` validation (form and
//! JSON variants, the port rules of Twilio's own validators), status-callback parsing with
//! the ordering rules that keep a call from moving backwards, Twilio's error JSON, and the REST client (calls create / fetch / update) that refuses
//! what Twilio would refuse before sending it.

pub mod callback;
pub mod client;
pub mod signature;
pub mod twilio_error;
pub mod twiml;
