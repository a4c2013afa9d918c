//! TwiML built from typed verbs: every text node and attribute value is escaped, so text a
//! caller or an AI produced can never become markup (the seed's template pasted raw text
//! into XML).

use std::fmt::Write as _;

/// Escapes `text` for an XML text node or a quoted attribute value; drops characters XML
/// 1.0 cannot carry at all (control characters other than tab, newline, carriage return).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || matches!(u32::from(c), 0xFFFE | 0xFFFF) => {}
            c => out.push(c),
        }
    }
    out
}

/// An element: name, attributes (`None` values are left out), children.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    name: &'static str,
    attributes: Vec<(&'static str, String)>,
    content: Content,
}

#[derive(Debug, Clone, PartialEq)]
enum Content {
    Empty,
    Text(String),
    Children(Vec<Element>),
}

impl Element {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            attributes: Vec::new(),
            content: Content::Empty,
        }
    }

    /// Sets `name="value"` (escaped on output).
    pub fn attr(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.attributes.push((name, value.into()));
        self
    }

    /// Sets `name` when `value` is given.
    pub fn attr_opt(self, name: &'static str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(value) => self.attr(name, value),
            None => self,
        }
    }

    fn text(mut self, text: impl Into<String>) -> Self {
        self.content = Content::Text(text.into());
        self
    }

    /// Adds a child element.
    pub fn child(mut self, child: Element) -> Self {
        match &mut self.content {
            Content::Children(children) => children.push(child),
            _ => self.content = Content::Children(vec![child]),
        }
        self
    }

    fn write(&self, out: &mut String) {
        let _ = write!(out, "<{}", self.name);
        for (name, value) in &self.attributes {
            let _ = write!(out, " {name}=\"{}\"", escape(value));
        }
        match &self.content {
            Content::Empty => out.push_str("/>"),
            Content::Text(text) => {
                let _ = write!(out, ">{}</{}>", escape(text), self.name);
            }
            Content::Children(children) => {
                out.push('>');
                for child in children {
                    child.write(out);
                }
                let _ = write!(out, "</{}>", self.name);
            }
        }
    }
}

/// `<Say>` text (add `voice` / `language` with [`Element::attr`]).
pub fn say(text: &str) -> Element {
    Element::new("Say").text(text)
}

/// `<Play>` of an audio URL.
pub fn play(url: &str) -> Element {
    Element::new("Play").text(url)
}

/// `<Pause length>`.
pub fn pause(seconds: u32) -> Element {
    Element::new("Pause").attr("length", seconds.to_string())
}

/// `<Redirect method="POST">url</Redirect>`.
pub fn redirect(url: &str) -> Element {
    Element::new("Redirect").attr("method", "POST").text(url)
}

/// `<Hangup/>`.
pub fn hangup() -> Element {
    Element::new("Hangup")
}

/// `<Dial>`; add `number`, `conference` or `queue` nouns with [`Element::child`].
pub fn dial() -> Element {
    Element::new("Dial")
}

/// `<Number>` (inside `<Dial>`).
pub fn number(e164: &str) -> Element {
    Element::new("Number").text(e164)
}

/// `<Conference>` room (inside `<Dial>`).
pub fn conference(room: &str) -> Element {
    Element::new("Conference").text(room)
}

/// `<Enqueue>` into a named queue (at most 64 characters, per Twilio).
pub fn enqueue(queue: &str) -> Element {
    Element::new("Enqueue").text(queue.chars().take(64).collect::<String>())
}

/// A whole TwiML document: `<?xml ...?><Response>...</Response>`.
pub fn response(verbs: impl IntoIterator<Item = Element>) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
    for verb in verbs {
        verb.write(&mut out);
    }
    out.push_str("</Response>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_stays_text() {
        let doc = response(
            [say("</Say><Dial><Number>+19005550100</Number></Dial><Say>")
                .attr("voice", "Polly.Joanna\" loop=\"0")],
        );
        assert!(!doc.contains("<Dial>"), "{doc}");
        assert!(doc.contains("&lt;/Say&gt;&lt;Dial&gt;"));
        assert!(doc.contains("voice=\"Polly.Joanna&quot; loop=&quot;0\""));
        let ssml = response([say("<speak><break time='10s'/></speak> & \u{7}bell")]);
        assert_eq!(
            ssml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>&lt;speak&gt;&lt;break time=&apos;10s&apos;/&gt;&lt;/speak&gt; &amp; bell</Say></Response>"
        );
    }

    #[test]
    fn transfers_build_the_documented_shapes() {
        let doc = response([
            say("Connecting you now."),
            dial()
                .attr(
                    "action",
                    "https://api.example.com/twilio/dial?call=c1&t=acme",
                )
                .attr("timeout", "30")
                .attr_opt("callerId", Some("+15550001111"))
                .attr_opt("record", None::<String>)
                .child(number("+15550002222").attr(
                    "statusCallbackEvent",
                    "initiated ringing answered completed",
                )),
        ]);
        assert!(doc.contains("<Dial action=\"https://api.example.com/twilio/dial?call=c1&amp;t=acme\" timeout=\"30\" callerId=\"+15550001111\"><Number statusCallbackEvent=\"initiated ringing answered completed\">+15550002222</Number></Dial>"), "{doc}");
        let hold = response([dial().child(
            conference("transfer-t1")
                .attr("startConferenceOnEnter", "false")
                .attr("waitUrl", "https://example.com/hold.mp3"),
        )]);
        assert!(hold.contains("<Conference startConferenceOnEnter=\"false\" waitUrl=\"https://example.com/hold.mp3\">transfer-t1</Conference>"));
        assert!(
            response([hangup(), pause(1), redirect("https://x/y")]).contains(
                "<Hangup/><Pause length=\"1\"/><Redirect method=\"POST\">https://x/y</Redirect>"
            )
        );
        assert_eq!(
            enqueue(&"q".repeat(100)).content,
            Content::Text("q".repeat(64))
        );
    }
}
