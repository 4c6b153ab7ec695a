//! Incremental Server-Sent Events parser (the WHATWG event-stream grammar): lines end in CR, LF or
//! CRLF — also when a CRLF pair is split between two network chunks —, lines starting with `:`
//! are comments, `field: value` strips one space, several `data:` lines join with `\n`, a blank
//! line dispatches the event. Bytes are buffered until a line is complete, so a UTF-8 character
//! split between chunks decodes correctly.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `None` for the default "message" type.
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    event: Option<String>,
    /// The previous byte was a CR, so an LF right after it ends no new line.
    after_cr: bool,
    /// A first line has ended (a leading BOM is stripped from it).
    started: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of bytes and appends every event it completes to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        for &b in chunk {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    self.end_line(out);
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                }
            }
        }
    }

    /// The stream ended. A last event that was not followed by a blank line is still delivered:
    /// servers that close right after `data: [DONE]` are common, and dropping it helps no one.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            self.end_line(out);
        }
        self.dispatch(out);
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        if !self.started {
            // The BOM is stripped from the first whole line, not the first chunk: a stream may
            // be cut inside it.
            self.started = true;
            if self.line.starts_with(b"\xEF\xBB\xBF") {
                self.line.drain(..3);
            }
        }
        if self.line.is_empty() {
            self.dispatch(out);
            return;
        }
        let line = std::mem::take(&mut self.line);
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // `id` and `retry` steer browser reconnection, which a completion stream never uses.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.push(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut last = 0;
        for &c in cuts.iter().chain(std::iter::once(&input.len())) {
            p.feed(&input[last..c], &mut out);
            last = c;
        }
        p.finish(&mut out);
        out
    }

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    const STREAM: &str = ": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: ping\ndata:first\ndata: second\n\n: comment\rdata: é😀\r\rdata: [DONE]\n\n";

    #[test]
    fn whole_stream_parses_with_mixed_line_endings_comments_and_multiline_data() {
        let events = parse_in_pieces(STREAM.as_bytes(), &[]);
        assert_eq!(
            data(&events),
            ["{\"a\":1}", "first\nsecond", "é😀", "[DONE]"]
        );
        assert_eq!(events[1].event.as_deref(), Some("ping"));
        assert_eq!(events[0].event, None);
    }

    #[test]
    fn splitting_the_stream_anywhere_gives_the_same_events() {
        let bytes = STREAM.as_bytes();
        let whole = parse_in_pieces(bytes, &[]);
        for i in 0..=bytes.len() {
            assert_eq!(parse_in_pieces(bytes, &[i]), whole, "cut at {i}");
            for j in i..=bytes.len() {
                assert_eq!(parse_in_pieces(bytes, &[i, j]), whole, "cuts at {i}, {j}");
            }
        }
    }

    #[test]
    fn byte_by_byte_crlf_split_does_not_make_blank_lines() {
        // A CR at the end of one chunk and its LF at the start of the next is one line end:
        // if it were two, "data: a" and "data: b" would become two events.
        let input = b"data: a\r\ndata: b\r\n\r\n";
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(data(&parse_in_pieces(input, &cuts)), ["a\nb"]);
    }

    #[test]
    fn error_event_mid_stream_is_delivered_as_data() {
        let input = b"data: {\"choices\":[]}\n\ndata: {\"error\":{\"message\":\"boom\"}}\n\n";
        let events = parse_in_pieces(input, &[5, 30]);
        assert_eq!(events.len(), 2);
        assert!(events[1].data.contains("\"error\""));
    }

    #[test]
    fn field_rules_follow_the_spec() {
        // No space after the colon, exactly one space stripped, a field with no colon, a BOM.
        let input = "\u{feff}data:x\n\ndata:  two spaces\n\ndata\n\nevent: only\n\n";
        let events = parse_in_pieces(input.as_bytes(), &[]);
        assert_eq!(data(&events), ["x", " two spaces", ""]);
    }

    #[test]
    fn a_bom_cut_between_chunks_is_still_stripped() {
        // Found by the property tests: with the BOM's bytes in two chunks, the first line read
        // as the field "\u{feff}data" and its event was lost.
        let input = b"\xEF\xBB\xBFdata: first\n\ndata: second\n\n";
        for cut in 0..=4 {
            assert_eq!(
                data(&parse_in_pieces(input, &[cut])),
                ["first", "second"],
                "cut at {cut}"
            );
        }
        assert_eq!(
            data(&parse_in_pieces(b"\xEF\xBB\xBF\n", &[1])),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_last_event_without_a_blank_line_is_still_delivered() {
        assert_eq!(data(&parse_in_pieces(b"data: [DONE]", &[])), ["[DONE]"]);
    }
}

/// Property tests: 10 000 arbitrary, generated or mutated streams each, fed whole and in pieces.
#[cfg(test)]
mod props {
    use super::*;
    use milc_api::mutation::{self, Edit};
    use proptest::prelude::*;

    /// Parses `input` fed in pieces cut at `cuts` (any order, any size; taken modulo the length).
    fn parse_cut(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut last = 0;
        for c in cuts.into_iter().chain([input.len()]) {
            p.feed(&input[last..c], &mut out);
            last = c;
        }
        p.finish(&mut out);
        out
    }

    fn parse_whole(input: &[u8]) -> Vec<SseEvent> {
        parse_cut(input, &[])
    }

    /// Bytes that an event stream is made of, and any other byte now and then.
    fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
        let b = prop_oneof![
            8 => prop::sample::select(b"data:event: \r\n\r\n:xy{}".to_vec()),
            1 => prop::sample::select(b"\xEF\xBB\xBF\xC3\xA9\xF0\x9F\x98\x80".to_vec()),
            1 => any::<u8>(),
        ];
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(b, 0..96),
        ]
    }

    /// What a server sends: events (a type or none, one or more data lines), comments, `id:`
    /// and `retry:` lines, any line ends, maybe a BOM, maybe no blank line after the last event.
    #[derive(Clone, Debug)]
    struct Stream {
        bytes: Vec<u8>,
        events: Vec<SseEvent>,
    }

    fn value() -> impl Strategy<Value = String> {
        // No CR or LF: a value is one line. Anything else, spaces and colons included.
        "[^\r\n]{0,12}"
    }

    fn stream() -> impl Strategy<Value = Stream> {
        let event = (
            prop::option::of(value()),
            prop::collection::vec(value(), 1..4),
            any::<bool>(),
            prop::option::of(value()),
        );
        let ends = prop::collection::vec(prop::sample::select(vec!["\n", "\r", "\r\n"]), 16);
        (
            prop::collection::vec(event, 0..5),
            ends,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(events, ends, bom, last_blank)| {
                let mut text = String::new();
                let mut k = 0;
                let mut end = |text: &mut String| {
                    // A CR then an LF is one line end (CRLF), never a line and a blank line.
                    let e = match ends[k % ends.len()] {
                        "\n" if text.ends_with('\r') => "\r",
                        e => e,
                    };
                    text.push_str(e);
                    k += 1;
                };
                if bom {
                    text.push('\u{feff}');
                }
                let n = events.len();
                let mut parsed = Vec::new();
                for (i, (kind, data, tight, comment)) in events.into_iter().enumerate() {
                    if let Some(c) = comment {
                        text.push(':');
                        text.push_str(&c);
                        end(&mut text);
                        text.push_str("id: 7");
                        end(&mut text);
                    }
                    if let Some(kind) = &kind {
                        text.push_str("event: ");
                        text.push_str(kind);
                        end(&mut text);
                    }
                    for d in &data {
                        // `data:x` and `data: x` are the same; a value that starts with a
                        // space needs the one space the parser strips.
                        text.push_str(if tight && !d.starts_with(' ') {
                            "data:"
                        } else {
                            "data: "
                        });
                        text.push_str(d);
                        end(&mut text);
                    }
                    text.push_str("retry: 1000");
                    end(&mut text);
                    if i + 1 < n || last_blank {
                        end(&mut text);
                    }
                    parsed.push(SseEvent {
                        event: kind,
                        data: data.join("\n"),
                    });
                }
                Stream {
                    bytes: text.into_bytes(),
                    events: parsed,
                }
            })
    }

    /// Mutations of valid streams ([`milc_api::mutation`]), with the bytes SSE cares about.
    fn edits() -> impl Strategy<Value = Vec<Edit<u8>>> {
        mutation::edits(b"\r\n:data \xEF\xBB\xBF\xFF\x00".to_vec(), false)
    }

    fn mutate(input: &[u8], edits: &[Edit<u8>]) -> Vec<u8> {
        mutation::apply(input, edits, &b'\n')
    }

    /// What holds for any stream: its events are the same however it is cut, and no event
    /// carries a line end in its type or a CR in its data.
    fn check_any(input: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
        let whole = parse_whole(input);
        prop_assert_eq!(&parse_cut(input, cuts), &whole, "cut at {:?}", cuts);
        for e in &whole {
            prop_assert!(!e.data.contains('\r'));
            prop_assert!(!e.event.as_deref().unwrap_or("").contains(['\r', '\n']));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

        /// A server's stream gives back exactly the events it sent, whole or cut anywhere.
        #[test]
        fn a_valid_stream_cut_anywhere_gives_the_events_sent(
            s in stream(),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            prop_assert_eq!(&parse_whole(&s.bytes), &s.events);
            prop_assert_eq!(&parse_cut(&s.bytes, &cuts), &s.events, "cut at {:?}", cuts);
        }

        /// Fed one byte at a time, a valid stream still gives the events sent.
        #[test]
        fn a_valid_stream_byte_by_byte_gives_the_events_sent(s in stream()) {
            let every: Vec<usize> = (1..s.bytes.len()).collect();
            prop_assert_eq!(&parse_cut(&s.bytes, &every), &s.events);
        }

        /// Arbitrary bytes: no panic, and the same events however they are cut.
        #[test]
        fn arbitrary_bytes_give_the_same_events_however_cut(
            b in stream_bytes(),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            check_any(&b, &cuts)?;
        }

        /// Valid streams with bytes inserted, deleted, replaced or cut off.
        #[test]
        fn mutated_streams_give_the_same_events_however_cut(
            s in stream(),
            e in edits(),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            check_any(&mutate(&s.bytes, &e), &cuts)?;
        }
    }
}
