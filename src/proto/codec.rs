//! The codec of the generated services and clients: prost's, with one check before a message
//! is decoded: no text field may hold a NUL character. PostgreSQL cannot store one in text,
//! SQLite would store it and cut it short in comparisons, and no name, address or title has
//! one; so it is refused as INVALID_ARGUMENT naming the field, before any database sees it.
//!
//! The check reads the message's wire format with the contract's descriptors, and only when
//! the message holds a zero byte at all: a message without one cannot have a NUL in a string,
//! so most messages cost one `memchr` over their bytes.

use std::{collections::HashMap, marker::PhantomData, sync::LazyLock};

use bytes::Buf;
use prost::{Message, Name};
use prost_types::{FileDescriptorSet, field_descriptor_proto::Label, field_descriptor_proto::Type};
use tonic::{
    Status,
    codec::{BufferSettings, DecodeBuf, Decoder},
};
use tonic_prost::ProstEncoder;

use crate::error::Error;

/// prost's codec with the NUL check on decoding.
#[derive(Debug, Clone)]
pub struct Codec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Name + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = Checked<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        Checked { _type: PhantomData }
    }
}

/// Decodes `U` after checking its text fields for NUL characters.
#[derive(Debug, Clone)]
pub struct Checked<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Name + Default> Decoder for Checked<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let length = buf.remaining();
        if buf.chunk().len() >= length {
            refuse_nul::<U>(&buf.chunk()[..length])?;
            U::decode(buf)
        } else {
            let bytes = buf.copy_to_bytes(length);
            refuse_nul::<U>(&bytes)?;
            U::decode(bytes)
        }
        .map(Some)
        // The answers layer gives this its code (INVALID_ARGUMENT) and the field's path.
        .map_err(|error| Status::internal(error.to_string()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// The rows of an import: each row is judged on its own (a row holding a NUL is a row error
/// naming the field, from the domain's refusal of control characters), so one bad row does
/// not end the whole import.
const JUDGED_PER_ROW: &[&str] = &[
    "clientele.v1.ImportCustomersRequest",
    "clientele.v1.ImportOrganisationsRequest",
];

fn refuse_nul<U: Name>(bytes: &[u8]) -> Result<(), Status> {
    if !bytes.contains(&0) {
        return Ok(());
    }
    let message = U::full_name();
    if JUDGED_PER_ROW.contains(&message.as_str()) {
        return Ok(());
    }
    match nul_field(&message, bytes) {
        Some(field) => Err(Error::invalid(field, "must not contain a NUL character").into()),
        None => Ok(()),
    }
}

/// What a field holds, as far as the check cares.
#[derive(Debug)]
enum Kind {
    Text,
    Message(String),
    Other,
}

#[derive(Debug)]
struct Field {
    name: String,
    kind: Kind,
    repeated: bool,
}

/// The fields of every message of the contract (nested ones and map entries included), by
/// the message's full name and the field's number.
static MESSAGES: LazyLock<HashMap<String, HashMap<u32, Field>>> = LazyLock::new(|| {
    let mut messages = HashMap::new();
    let Ok(set) = FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET) else {
        return messages;
    };
    fn add(
        messages: &mut HashMap<String, HashMap<u32, Field>>,
        scope: &str,
        message: &prost_types::DescriptorProto,
    ) {
        let name = format!("{scope}.{}", message.name());
        let fields = message
            .field
            .iter()
            .map(|field| {
                let kind = match field.r#type() {
                    Type::String => Kind::Text,
                    Type::Message => {
                        Kind::Message(field.type_name().trim_start_matches('.').to_owned())
                    }
                    _ => Kind::Other,
                };
                let described = Field {
                    name: field.name().to_owned(),
                    kind,
                    repeated: field.label() == Label::Repeated,
                };
                (field.number() as u32, described)
            })
            .collect();
        for nested in &message.nested_type {
            add(messages, &name, nested);
        }
        messages.insert(name, fields);
    }
    for file in &set.file {
        for message in &file.message_type {
            add(&mut messages, file.package(), message);
        }
    }
    messages
});

/// The path of the first text field in `bytes` (a `message`) that holds a NUL, if any.
/// Bytes that are not a well-formed message end the search; prost refuses them next.
fn nul_field(message: &str, bytes: &[u8]) -> Option<String> {
    let mut path = Vec::new();
    walk(message, bytes, &mut path, 0)
}

/// prost's own limit on nesting.
const MAX_DEPTH: usize = 100;

fn walk(message: &str, bytes: &[u8], path: &mut Vec<String>, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    let fields = MESSAGES.get(message)?;
    let mut seen: HashMap<u32, usize> = HashMap::new();
    let mut at = 0;
    while at < bytes.len() {
        let key = varint(bytes, &mut at)?;
        let number = u32::try_from(key >> 3).ok()?;
        let wire = key & 7;
        if wire != 2 {
            at = skip_value(bytes, at, wire, number, depth)?;
            continue;
        }
        let length = usize::try_from(varint(bytes, &mut at)?).ok()?;
        let end = at.checked_add(length)?;
        let payload = bytes.get(at..end)?;
        at = end;
        let Some(field) = fields.get(&number) else {
            continue;
        };
        // Every occurrence of a repeated field counts for the index, with or without a NUL.
        let index = field.repeated.then(|| {
            let seen = seen.entry(number).or_default();
            *seen += 1;
            *seen - 1
        });
        if !payload.contains(&0) {
            continue;
        }
        let name = match index {
            Some(index) => format!("{}[{index}]", field.name),
            None => field.name.clone(),
        };
        match &field.kind {
            Kind::Text => {
                path.push(name);
                return Some(path.join("."));
            }
            Kind::Message(type_name) => {
                path.push(name);
                if let Some(found) = walk(type_name, payload, path, depth + 1) {
                    return Some(found);
                }
                path.pop();
            }
            Kind::Other => {}
        }
    }
    None
}

/// Where the value of wire type `wire` (of field `number`) that starts at `at` ends; `None`
/// for bytes that are not one. Groups are skipped as prost skips unknown ones.
fn skip_value(bytes: &[u8], mut at: usize, wire: u64, number: u32, depth: usize) -> Option<usize> {
    match wire {
        0 => {
            varint(bytes, &mut at)?;
        }
        1 => at = at.checked_add(8)?,
        5 => at = at.checked_add(4)?,
        2 => {
            let length = usize::try_from(varint(bytes, &mut at)?).ok()?;
            at = at.checked_add(length)?;
        }
        3 => at = skip_group(bytes, at, number, depth)?,
        // An end of group without its start, or no wire type at all: prost refuses it.
        _ => return None,
    }
    (at <= bytes.len()).then_some(at)
}

/// Where the group of field `number` that starts at `at` ends, past its end tag.
fn skip_group(bytes: &[u8], mut at: usize, number: u32, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    loop {
        let key = varint(bytes, &mut at)?;
        let inner = u32::try_from(key >> 3).ok()?;
        if key & 7 == 4 && inner == number {
            return Some(at);
        }
        at = skip_value(bytes, at, key & 7, inner, depth + 1)?;
    }
}

fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1 as pb;

    #[test]
    fn a_nul_is_found_in_nested_and_repeated_text_and_nowhere_else() {
        let request = pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                first_name: "Ada".into(),
                secondary_emails: vec!["a@example.com".into(), "b\0@example.com".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = request.encode_to_vec();
        assert_eq!(
            nul_field(&pb::CreateCustomerRequest::full_name(), &bytes).as_deref(),
            Some("customer.secondary_emails[1]")
        );
        let clean = pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                first_name: "Ada".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            nul_field(
                &pb::CreateCustomerRequest::full_name(),
                &clean.encode_to_vec()
            ),
            None
        );
        let upload = pb::UploadAttachmentRequest {
            part: Some(pb::upload_attachment_request::Part::Chunk(vec![0, 0, 0])),
        };
        assert_eq!(
            nul_field(
                &pb::UploadAttachmentRequest::full_name(),
                &upload.encode_to_vec()
            ),
            None
        );
        assert_eq!(
            nul_field("clientele.v1.CreateCustomerRequest", &[0x0a, 0xff]),
            None
        );
        // An unknown group before the text does not hide it (prost skips the group).
        let mut grouped = vec![0x9b, 0x01, 0x08, 0x01, 0x9c, 0x01];
        grouped.extend_from_slice(&bytes);
        assert!(pb::CreateCustomerRequest::decode(grouped.as_slice()).is_ok());
        assert_eq!(
            nul_field(&pb::CreateCustomerRequest::full_name(), &grouped).as_deref(),
            Some("customer.secondary_emails[1]")
        );
    }
}
