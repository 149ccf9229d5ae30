//! The v1 contract as client generators read it: the compiled descriptors of `proto/`.

use prost::Message;
use prost_types::FileDescriptorSet;

/// The files of package `clientele.v1`.
fn contract_files() -> Vec<prost_types::FileDescriptorProto> {
    let set = FileDescriptorSet::decode(clientele::proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let files: Vec<_> = set
        .file
        .into_iter()
        .filter(|file| file.package() == "clientele.v1")
        .collect();
    assert!(files.len() >= 9, "the contract's files: {}", files.len());
    files
}

/// protoc-gen-go refuses a file without `go_package`; the other generators fall back to names
/// derived from the proto package that differ from language to language. Every file names its
/// package for Go, Java, C#, PHP and Ruby, the same in every file.
#[test]
fn every_file_names_its_package_for_go_java_csharp_php_and_ruby() {
    for file in contract_files() {
        let name = file.name().to_owned();
        let options = file
            .options
            .unwrap_or_else(|| panic!("{name} has no options"));
        assert_eq!(
            options.go_package(),
            "github.com/clientele-dev/clientele/gen/go/clientele/v1;clientelev1",
            "{name}"
        );
        assert_eq!(options.java_package(), "dev.clientele.v1", "{name}");
        assert!(options.java_multiple_files(), "{name}");
        assert!(
            options.java_outer_classname().ends_with("Proto"),
            "{name}: {}",
            options.java_outer_classname()
        );
        assert_eq!(options.csharp_namespace(), "Clientele.V1", "{name}");
        assert_eq!(options.php_namespace(), "Clientele\\V1", "{name}");
        assert_eq!(options.ruby_package(), "Clientele::V1", "{name}");
    }
}

/// Every field of every message in the contract, with the message it is in.
fn fields() -> Vec<(String, prost_types::FieldDescriptorProto)> {
    fn walk(
        prefix: &str,
        message: &prost_types::DescriptorProto,
        out: &mut Vec<(String, prost_types::FieldDescriptorProto)>,
    ) {
        let name = format!("{prefix}.{}", message.name());
        for field in &message.field {
            out.push((name.clone(), field.clone()));
        }
        for nested in &message.nested_type {
            if !nested.options.as_ref().is_some_and(|o| o.map_entry()) {
                walk(&name, nested, out);
            }
        }
    }
    let mut out = Vec::new();
    for file in contract_files() {
        for message in &file.message_type {
            walk("clientele.v1", message, &mut out);
        }
    }
    assert!(out.len() > 300, "fields found: {}", out.len());
    out
}

/// How a field is typed: its scalar type, the message it holds, `map` for a map, or `enum`
/// (each list has its order enum, each event its kind enum).
fn type_of(field: &prost_types::FieldDescriptorProto) -> String {
    use prost_types::field_descriptor_proto::{Label, Type};
    match field.r#type() {
        Type::Enum => "enum".to_owned(),
        Type::Message
            if field.label() == Label::Repeated && field.type_name().ends_with("Entry") =>
        {
            "map".to_owned()
        }
        Type::Message => field.type_name().to_owned(),
        scalar => format!("{scalar:?}"),
    }
}

/// A name means one thing across all files: a field name has the same type wherever it
/// appears (`update_time` was a budget Duration on SlaPolicy and a Timestamp elsewhere; the
/// overview's `reminder_due` a list of tickets and the ticket's a flag). Two names are
/// conventional and stay: `comment` is a free-text attribute of organisations and groups and,
/// by AIP-133, the resource of `CreateCommentRequest`; `reason` is the machine-readable
/// reason of an import row's error (a string, as in `google.rpc.ErrorInfo`) and why
/// a right is held.
#[test]
fn a_field_name_has_one_type_in_every_message() {
    let mut seen: std::collections::BTreeMap<String, (String, String)> = Default::default();
    let mut clashes = Vec::new();
    for (message, field) in fields() {
        if matches!(field.name(), "comment" | "reason") {
            continue;
        }
        let typed = type_of(&field);
        match seen.get(field.name()) {
            Some((first, first_type)) if *first_type != typed => clashes.push(format!(
                "{}: {first_type} in {first}, {typed} in {message}",
                field.name()
            )),
            Some(_) => {}
            None => {
                seen.insert(field.name().to_owned(), (message, typed));
            }
        }
    }
    assert!(clashes.is_empty(), "{clashes:#?}");
}

/// AIP-142: a `*_time` field is a point in time; a duration says what it bounds.
#[test]
fn only_timestamps_are_named_time() {
    for (message, field) in fields() {
        let typed = type_of(&field);
        if field.name().ends_with("_time") {
            assert_eq!(
                typed,
                ".google.protobuf.Timestamp",
                "{message}.{}",
                field.name()
            );
        }
        if typed == ".google.protobuf.Duration" {
            assert!(
                !field.name().ends_with("_time"),
                "{message}.{}",
                field.name()
            );
        }
    }
}

/// The organisation's business key is its `code` everywhere it is named; `customer_id` is
/// only ever a customer's id.
#[test]
fn the_organisation_business_key_is_its_code() {
    let fields = fields();
    let named = |message: &str, field: &str| {
        fields
            .iter()
            .any(|(m, f)| m == message && f.name() == field)
    };
    for message in [
        "clientele.v1.Organisation",
        "clientele.v1.GetOrganisationRequest",
        "clientele.v1.GetOrganisationOverviewRequest",
    ] {
        assert!(named(message, "code"), "{message} has a code");
        assert!(
            !named(message, "customer_id"),
            "{message} has no customer_id"
        );
    }
}

/// The comments a generated client carries stand on their own: none cites a document that is
/// not in the repository.
#[test]
fn comments_cite_no_document_outside_the_repository() {
    for file in contract_files() {
        let info = file
            .source_code_info
            .clone()
            .expect("comments are compiled in");
        for location in info.location {
            let comment = format!(
                "{}{}",
                location.leading_comments(),
                location.trailing_comments()
            );
            assert!(!comment.contains("DESIGN"), "{}: {comment}", file.name());
        }
    }
}
