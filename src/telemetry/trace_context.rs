//! W3C trace context (`traceparent`) carried across time.
//!
//! The app's `traceparent` on `POST /v1/events` becomes the parent of the
//! ingest span; the ingest span's own context is what hookd stores with
//! the event. Every attempt, however much later and after however many
//! restarts, is a child of that stored context, and the subscriber gets the
//! attempt span's context as its `traceparent`.
//!
//! When no exporter is configured the spans have no OpenTelemetry context;
//! hookd then stores the app's `traceparent` as it came and sends each
//! attempt in the app's trace with a span id of its own.

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header that carries trace context, on ingest and on webhooks.
pub const TRACEPARENT: &str = "traceparent";

/// Parses a well-formed `traceparent`: `<version>-<32 hex>-<16 hex>-<2 hex>`
/// with neither id all zeros and a version other than `ff`. Later versions
/// may append fields after the flags; only version `00` must end there.
pub fn parse(value: &str) -> Option<SpanContext> {
    let mut parts = value.split('-');
    let version = parts.next().filter(|part| is_hex(part, 2) && *part != "ff")?;
    let trace_id = parts.next().filter(|part| is_hex(part, 32))?;
    let span_id = parts.next().filter(|part| is_hex(part, 16))?;
    let flags = parts.next().filter(|part| is_hex(part, 2))?;
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(span_id).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let context = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & TraceFlags::SAMPLED.to_u8()),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// The `traceparent` that names `context`.
pub fn format(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// Makes `span` a child of the remote span that `traceparent` names. Call
/// it before the span is entered; a malformed or absent value leaves the
/// span where it was.
pub fn adopt(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(parent) = traceparent.and_then(parse) {
        // Fails only when no exporter is installed: then there is no
        // OpenTelemetry span to parent.
        let _ = span.set_parent(Context::new().with_remote_span_context(parent));
    }
}

/// The `traceparent` of `span`, when an exporter gives it an OpenTelemetry
/// context.
pub fn of_span(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| format(&span_context))
}

/// What to store with an event ingested in `span`: the span's own context,
/// or without an exporter the app's `incoming` one.
pub fn to_store(span: &tracing::Span, incoming: Option<&str>) -> Option<String> {
    of_span(span).or_else(|| incoming.filter(|value| parse(value).is_some()).map(str::to_owned))
}

/// The `traceparent` an attempt made in `span` sends: the span's own
/// context, or without an exporter a fresh span id in the `stored` trace
/// (a fresh trace when there is none).
pub fn outgoing(span: &tracing::Span, stored: Option<&str>) -> String {
    of_span(span).unwrap_or_else(|| {
        let span_id = SpanId::from(rand::random::<u64>().max(1));
        let context = match stored.and_then(parse) {
            Some(parent) => SpanContext::new(
                parent.trace_id(),
                span_id,
                parent.trace_flags(),
                false,
                TraceState::default(),
            ),
            None => SpanContext::new(
                TraceId::from(rand::random::<u128>().max(1)),
                span_id,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
        };
        format(&context)
    })
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_well_formed_traceparent_round_trips() {
        let context = parse(APP).expect("well-formed");
        assert!(context.is_remote() && context.is_sampled());
        assert_eq!(format(&context), APP);
    }

    #[test]
    fn malformed_values_are_ignored() {
        for value in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse(value).is_none(), "{value:?} should be refused");
        }
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        let value = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-whatever";
        assert_eq!(format(&parse(value).expect("parsed")), APP);
    }

    #[test]
    fn without_an_exporter_attempts_stay_in_the_stored_trace() {
        let span = tracing::info_span!("attempt");
        assert_eq!(to_store(&span, Some(APP)).as_deref(), Some(APP));
        assert_eq!(to_store(&span, Some("garbage")), None);
        let sent = outgoing(&span, Some(APP));
        let context = parse(&sent).expect("well-formed");
        assert_eq!(context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(context.span_id().to_string(), "00f067aa0ba902b7");
        let unsampled = outgoing(&span, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
        assert!(unsampled.ends_with("-00"), "the sampling decision is kept: {unsampled}");
        assert!(
            parse(&outgoing(&span, None)).is_some(),
            "a fresh trace without a stored one"
        );
    }
}
