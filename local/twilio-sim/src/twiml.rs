//! TwiML parsed (with roxmltree) into the verbs the simulator executes. Attribute names are
//! Twilio's (camelCase); unknown verbs are kept as [`Verb::Unsupported`] so the call log
//! shows them.

use roxmltree::Node;

/// GET or POST, for webhook attributes (`method`, `statusCallbackMethod`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpMethod {
    Get,
    Post,
}

impl HttpMethod {
    /// `GET` or `POST`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }

    /// `GET`/`POST` in any case; anything else is `None`.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        if value.eq_ignore_ascii_case("GET") {
            Some(Self::Get)
        } else if value.eq_ignore_ascii_case("POST") {
            Some(Self::Post)
        } else {
            None
        }
    }
}

/// One TwiML verb.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verb {
    Say {
        text: String,
        loops: u32,
    },
    Play {
        url: String,
        loops: u32,
    },
    Pause {
        seconds: u32,
    },
    Hangup,
    Reject,
    Redirect {
        url: String,
        method: HttpMethod,
    },
    Dial(Box<Dial>),
    /// `<Gather>`: its nested Say/Play/Pause, then `timeout` seconds of silence (no input
    /// is ever simulated), then the next verb.
    Gather {
        children: Vec<Verb>,
        timeout: u32,
    },
    /// A verb that keeps the call where it is until it is redirected or hung up
    /// (`<Enqueue>`, `<Connect>`); the label is what the call log records.
    Wait {
        label: String,
    },
    Unsupported(String),
}

/// `<Dial>` and its noun.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dial {
    pub action: Option<String>,
    pub method: HttpMethod,
    /// Ring time of the dialled leg, seconds (default 30).
    pub timeout: u32,
    pub caller_id: Option<String>,
    pub target: Target,
}

/// What a `<Dial>` reaches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// `<Number>`, `<Client>`, `<Sip>` or bare text: a new child leg.
    Leg(LegSpec),
    Conference(ConferenceSpec),
    /// A noun the simulator does not model (`<Queue>`, ...).
    Unsupported(String),
    /// Nothing to dial.
    Empty,
}

/// A dialled leg.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LegSpec {
    /// E.164, `client:<identity>` or `sip:...`.
    pub to: String,
    /// Whisper TwiML run on the child leg before bridging.
    pub url: Option<String>,
    pub url_method: HttpMethod,
    pub status_callback: Option<String>,
    pub status_callback_method: HttpMethod,
    /// `initiated ringing answered completed`; `completed` when omitted.
    pub events: Vec<String>,
}

/// `<Conference>`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConferenceSpec {
    pub name: String,
    pub start_on_enter: bool,
    pub end_on_exit: bool,
    pub muted: bool,
    pub beep: String,
    pub wait_url: Option<String>,
    pub status_callback: Option<String>,
    pub status_callback_method: HttpMethod,
    /// `start end join leave mute hold ...`; `start end` when omitted.
    pub events: Vec<String>,
    pub label: Option<String>,
    pub coach: Option<String>,
}

/// Parses a whole document: the root must be `<Response>`.
pub(crate) fn parse(xml: &str) -> Result<Vec<Verb>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("invalid TwiML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "Response" {
        return Err(format!(
            "the root element <{}> is not <Response>",
            root.tag_name().name()
        ));
    }
    Ok(root.children().filter(Node::is_element).map(verb).collect())
}

fn verb(node: Node<'_, '_>) -> Verb {
    match node.tag_name().name() {
        "Say" => Verb::Say {
            text: collapse(&all_text(node)),
            loops: loops(node),
        },
        "Play" => Verb::Play {
            url: own_text(node),
            loops: loops(node),
        },
        "Pause" => Verb::Pause {
            seconds: number(node, "length").unwrap_or(1),
        },
        "Hangup" => Verb::Hangup,
        "Reject" => Verb::Reject,
        "Redirect" => Verb::Redirect {
            url: own_text(node),
            method: method(node, "method"),
        },
        "Dial" => Verb::Dial(Box::new(dial(node))),
        "Gather" => Verb::Gather {
            children: node
                .children()
                .filter(Node::is_element)
                .map(verb)
                .filter(|v| matches!(v, Verb::Say { .. } | Verb::Play { .. } | Verb::Pause { .. }))
                .collect(),
            timeout: number(node, "timeout").unwrap_or(5),
        },
        "Enqueue" => Verb::Wait {
            label: format!("Enqueue:{}", own_text(node)),
        },
        "Connect" => {
            let inner = node
                .children()
                .find(Node::is_element)
                .map(|n| {
                    let target = n.attribute("url").or(n.attribute("name")).unwrap_or("");
                    format!("{}:{target}", n.tag_name().name())
                })
                .unwrap_or_default();
            Verb::Wait {
                label: format!("Connect:{inner}"),
            }
        }
        other => Verb::Unsupported(other.to_owned()),
    }
}

fn dial(node: Node<'_, '_>) -> Dial {
    let target = match node.children().find(Node::is_element) {
        None => {
            let text = own_text(node);
            if text.is_empty() {
                Target::Empty
            } else {
                Target::Leg(leg(node, text))
            }
        }
        Some(noun) => match noun.tag_name().name() {
            "Number" | "Sip" => Target::Leg(leg(noun, own_text(noun))),
            "Client" => {
                let identity = noun
                    .children()
                    .find(|n| n.has_tag_name("Identity"))
                    .map(own_text)
                    .unwrap_or_else(|| own_text(noun));
                Target::Leg(leg(noun, format!("client:{identity}")))
            }
            "Conference" => Target::Conference(conference(noun)),
            other => Target::Unsupported(other.to_owned()),
        },
    };
    Dial {
        action: attr(node, "action"),
        method: method(node, "method"),
        timeout: number(node, "timeout").unwrap_or(30),
        caller_id: attr(node, "callerId"),
        target,
    }
}

fn leg(node: Node<'_, '_>, to: String) -> LegSpec {
    LegSpec {
        to,
        url: attr(node, "url"),
        url_method: method(node, "method"),
        status_callback: attr(node, "statusCallback"),
        status_callback_method: method(node, "statusCallbackMethod"),
        events: events(node, &["completed"]),
    }
}

fn conference(node: Node<'_, '_>) -> ConferenceSpec {
    let flag = |name: &str, default: bool| {
        node.attribute(name)
            .and_then(crate::util::parse_bool)
            .unwrap_or(default)
    };
    ConferenceSpec {
        name: own_text(node),
        start_on_enter: flag("startConferenceOnEnter", true),
        end_on_exit: flag("endConferenceOnExit", false),
        muted: flag("muted", false),
        beep: attr(node, "beep").unwrap_or_else(|| "true".into()),
        wait_url: attr(node, "waitUrl"),
        status_callback: attr(node, "statusCallback"),
        status_callback_method: method(node, "statusCallbackMethod"),
        events: events(node, &["start", "end"]),
        label: attr(node, "participantLabel"),
        coach: attr(node, "coach"),
    }
}

fn attr(node: Node<'_, '_>, name: &str) -> Option<String> {
    node.attribute(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn method(node: Node<'_, '_>, name: &str) -> HttpMethod {
    node.attribute(name)
        .and_then(HttpMethod::parse)
        .unwrap_or(HttpMethod::Post)
}

fn number(node: Node<'_, '_>, name: &str) -> Option<u32> {
    node.attribute(name).and_then(|v| v.trim().parse().ok())
}

/// `loop`: 1 by default; 0 ("forever") and anything above 3 play 3 times.
fn loops(node: Node<'_, '_>) -> u32 {
    match number(node, "loop") {
        None => 1,
        Some(0) => 3,
        Some(n) => n.min(3),
    }
}

fn events(node: Node<'_, '_>, default: &[&str]) -> Vec<String> {
    match node.attribute("statusCallbackEvent") {
        Some(list) => list.split_whitespace().map(str::to_owned).collect(),
        None => default.iter().map(|e| (*e).to_owned()).collect(),
    }
}

/// The element's own text nodes, trimmed (children elements excluded).
fn own_text(node: Node<'_, '_>) -> String {
    node.children()
        .filter(Node::is_text)
        .filter_map(|n| n.text())
        .collect::<String>()
        .trim()
        .to_owned()
}

/// All descendant text (SSML inside `<Say>` included).
fn all_text(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(Node::is_text)
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ")
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_parse_into_verbs() {
        let verbs = parse(
            r#"<?xml version="1.0" encoding="UTF-8"?>
            <Response>
              <Say voice="alice">Hello
                there</Say>
              <Play loop="0">https://example.com/a.wav</Play>
              <Pause length="4"/>
              <Gather timeout="2"><Say>Press one</Say><Hangup/></Gather>
              <Dial action="/after" timeout="12" callerId="+15550001111">
                <Number url="/whisper" statusCallback="https://x/s" statusCallbackEvent="ringing answered">+14155550123</Number>
              </Dial>
              <Dial><Client><Identity>agent_1</Identity><Parameter name="a" value="b"/></Client></Dial>
              <Dial>+14155550999</Dial>
              <Dial><Conference endConferenceOnExit="true" statusCallbackEvent="join leave">room-1</Conference></Dial>
              <Dial><Queue>support</Queue></Dial>
              <Redirect method="get">next</Redirect>
              <Enqueue>support</Enqueue>
              <Record/>
              <Reject/>
              <Hangup/>
            </Response>"#,
        )
        .expect("valid TwiML");
        assert_eq!(
            verbs[0],
            Verb::Say {
                text: "Hello there".into(),
                loops: 1
            }
        );
        assert_eq!(
            verbs[1],
            Verb::Play {
                url: "https://example.com/a.wav".into(),
                loops: 3
            }
        );
        assert_eq!(verbs[2], Verb::Pause { seconds: 4 });
        assert!(matches!(&verbs[3], Verb::Gather { children, timeout: 2 } if children.len() == 1));
        let Verb::Dial(dial) = &verbs[4] else {
            panic!("not a dial: {:?}", verbs[4]);
        };
        assert_eq!(dial.action.as_deref(), Some("/after"));
        assert_eq!(dial.timeout, 12);
        assert_eq!(dial.caller_id.as_deref(), Some("+15550001111"));
        let Target::Leg(leg) = &dial.target else {
            panic!("not a leg");
        };
        assert_eq!(leg.to, "+14155550123");
        assert_eq!(leg.url.as_deref(), Some("/whisper"));
        assert_eq!(leg.events, ["ringing", "answered"]);
        let dial_of = |verb: &Verb| match verb {
            Verb::Dial(dial) => (**dial).clone(),
            other => panic!("not a dial: {other:?}"),
        };
        assert!(
            matches!(dial_of(&verbs[5]), Dial { target: Target::Leg(l), .. } if l.to == "client:agent_1")
        );
        assert!(
            matches!(dial_of(&verbs[6]), Dial { target: Target::Leg(l), timeout: 30, .. } if l.to == "+14155550999" && l.events == ["completed"])
        );
        let Dial {
            target: Target::Conference(room),
            ..
        } = dial_of(&verbs[7])
        else {
            panic!("not a conference");
        };
        assert_eq!(room.name, "room-1");
        assert!(room.end_on_exit && room.start_on_enter && !room.muted);
        assert_eq!(room.events, ["join", "leave"]);
        assert!(
            matches!(dial_of(&verbs[8]), Dial { target: Target::Unsupported(q), .. } if q == "Queue")
        );
        assert_eq!(
            verbs[9],
            Verb::Redirect {
                url: "next".into(),
                method: HttpMethod::Get
            }
        );
        assert_eq!(
            verbs[10],
            Verb::Wait {
                label: "Enqueue:support".into()
            }
        );
        assert_eq!(verbs[11], Verb::Unsupported("Record".into()));
        assert_eq!(verbs[12], Verb::Reject);
        assert_eq!(verbs[13], Verb::Hangup);
    }

    #[test]
    fn bad_documents_are_refused() {
        assert!(parse("hello").is_err());
        let wrong_root = parse("<Reply><Say>x</Say></Reply>").expect_err("wrong root");
        assert!(wrong_root.contains("<Reply>"), "{wrong_root}");
        assert_eq!(parse("<Response/>").expect("empty is fine"), vec![]);
    }
}
