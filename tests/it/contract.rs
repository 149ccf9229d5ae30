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
