//! One etag rule for every call that changes an existing record: the etag as the client read
//! it is required (a missing one is INVALID_ARGUMENT naming the field, a stale one ABORTED,
//! and neither changes anything); asking for the state the record already has changes
//! nothing and answers without one, so a retry answers as the first call did.

use clientele::proto::v1 as pb;
use tonic::Code;

use crate::support::*;

/// A valid customer with this email address.
fn person(email: &str) -> pb::Customer {
    pb::Customer {
        email: email.to_owned(),
        last_name: "Etag".to_owned(),
        ..Default::default()
    }
}

backend_tests! {
    async fn deactivation_reactivation_deletion_and_merges_need_the_etag_as_read(server) {
        let org = server.organisation("ETAGS", &[]).await;
        let customer = server.customer(pb::Customer { organisation_id: org.id.clone(), ..person("etag@example.com") }).await;
        let other = server.customer(person("other@example.com")).await;
        let mut orgs = server.organisations();
        let mut customers = server.customers();
        let paused = pb::Validity::InvalidTemporarily as i32;
        let before = server.snapshot().await;

        expect_invalid(orgs.deactivate_organisation(pb::DeactivateOrganisationRequest { id: org.id.clone(), validity: paused, etag: String::new() }).await, "etag");
        expect_code(orgs.deactivate_organisation(pb::DeactivateOrganisationRequest { id: org.id.clone(), validity: paused, etag: "stale".into() }).await, Code::Aborted);
        expect_invalid(customers.deactivate_customer(pb::DeactivateCustomerRequest { id: customer.id.clone(), validity: paused, etag: String::new() }).await, "etag");
        expect_code(customers.deactivate_customer(pb::DeactivateCustomerRequest { id: customer.id.clone(), validity: paused, etag: "stale".into() }).await, Code::Aborted);
        expect_invalid(customers.delete_customer(pb::DeleteCustomerRequest { id: customer.id.clone(), etag: String::new() }).await, "etag");
        let merge = pb::MergeCustomersRequest { source_id: other.id.clone(), target_id: customer.id.clone(), source_etag: other.etag.clone(), target_etag: customer.etag.clone() };
        expect_invalid(customers.merge_customers(pb::MergeCustomersRequest { source_etag: String::new(), ..merge.clone() }).await, "source_etag");
        expect_invalid(customers.merge_customers(pb::MergeCustomersRequest { target_etag: String::new(), ..merge.clone() }).await, "target_etag");
        expect_code(customers.merge_customers(pb::MergeCustomersRequest { target_etag: "stale".into(), ..merge.clone() }).await, Code::Aborted);
        assert_eq!(server.snapshot().await, before, "nothing changed");

        // With the etags as read, each goes through; a repeat of a state the record already
        // has answers as the first call did, whatever etag it carries.
        let deactivated = orgs.deactivate_organisation(pb::DeactivateOrganisationRequest { id: org.id.clone(), validity: paused, etag: org.etag.clone() }).await.expect("deactivate").into_inner().organisation.expect("organisation");
        let again = orgs.deactivate_organisation(pb::DeactivateOrganisationRequest { id: org.id.clone(), validity: paused, etag: org.etag.clone() }).await.expect("repeat").into_inner().organisation.expect("organisation");
        assert_eq!(again.etag, deactivated.etag);
        expect_code(orgs.reactivate_organisation(pb::ReactivateOrganisationRequest { id: org.id.clone(), etag: org.etag.clone() }).await, Code::Aborted);
        orgs.reactivate_organisation(pb::ReactivateOrganisationRequest { id: org.id.clone(), etag: deactivated.etag.clone() }).await.expect("reactivate");
        let customer_now = server.customer_etag(&customer.id).await;
        let paused_customer = customers.deactivate_customer(pb::DeactivateCustomerRequest { id: customer.id.clone(), validity: paused, etag: customer_now.clone() }).await.expect("deactivate").into_inner().customer.expect("customer");
        customers.deactivate_customer(pb::DeactivateCustomerRequest { id: customer.id.clone(), validity: paused, etag: customer_now }).await.expect("repeat");
        customers.reactivate_customer(pb::ReactivateCustomerRequest { id: customer.id.clone(), etag: paused_customer.etag.clone() }).await.expect("reactivate");
        customers.merge_customers(pb::MergeCustomersRequest { target_etag: server.customer_etag(&customer.id).await, ..merge }).await.expect("merge");
        customers.delete_customer(pb::DeleteCustomerRequest { id: customer.id.clone(), etag: server.customer_etag(&customer.id).await }).await.expect("delete");
    }
}
