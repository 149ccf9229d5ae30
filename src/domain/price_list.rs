//! Price lists: items with prices in one currency, applied to the members of contact groups
//! by precedence; and the prices that apply to one customer.

use std::{collections::HashMap, sync::Arc};

use serde_json::json;
use uuid::Uuid;

use super::{
    changes::{self, Audit, check_etag},
    contact_group::ContactGroups,
    fields::{self, Violations},
    paging::{self, Page},
    rights::{Administrator, StaffReader},
};
use crate::{
    clock::Clock,
    error::{Error, Result},
    model::{
        ChangeKind, Contact, EffectivePrice, Price, PriceItem, PriceList, ResourceType, Validity,
        fold_case,
    },
    store::{Cursor, Scope, Store, price_list_cursor},
};

/// The most items one price list holds.
pub const MAX_ITEMS: usize = 1000;
/// The most item codes one GetEffectivePrices names.
pub const MAX_ITEM_CODES: usize = 1000;

/// Ten-thousandths in a unit.
const SCALE: i64 = 10_000;

impl Price {
    /// A price written as a decimal number with a dot: 1 to 12 digits, then optionally a dot
    /// and 1 to 4 digits. Nothing else (no sign, exponent, spaces or thousands separators).
    pub fn parse(raw: &str) -> Option<Self> {
        let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
        let digits = |text: &str| text.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 12 || !digits(whole) || !digits(fraction) {
            return None;
        }
        if raw.contains('.') && !(1..=4).contains(&fraction.len()) {
            return None;
        }
        let whole: i64 = whole.parse().ok()?;
        let fraction: i64 = format!("{fraction:0<4}").parse().ok()?;
        Some(Self(whole * SCALE + fraction))
    }
}

impl std::fmt::Display for Price {
    /// At least two decimals, at most four: `95.50`, `0.0125`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fraction = format!("{:04}", self.0 % SCALE);
        let fraction = fraction.trim_end_matches('0');
        write!(f, "{}.{fraction:0<2}", self.0 / SCALE)
    }
}

/// The values a client sends for a price list.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PriceListInput {
    /// Name.
    pub name: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Free text.
    pub comment: String,
    /// Validity; `None` means valid.
    pub validity: Option<Validity>,
    /// Items as sent: (code, name, unit price).
    pub items: Vec<(String, String, String)>,
}

/// The fields an update of a price list may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceListField {
    /// `name`
    Name,
    /// `currency`
    Currency,
    /// `comment`
    Comment,
    /// `validity`
    Validity,
    /// `items`
    Items,
}

impl PriceListField {
    /// Every updatable field.
    pub const ALL: [Self; 5] = [
        Self::Name,
        Self::Currency,
        Self::Comment,
        Self::Validity,
        Self::Items,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Currency => "currency",
            Self::Comment => "comment",
            Self::Validity => "validity",
            Self::Items => "items",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, fields::output_only)
    }
}

/// Which price list to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PriceListKey {
    /// By id.
    Id(Uuid),
    /// By name, case-insensitively.
    Name(String),
}

/// What GetEffectivePrices asks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceQuery {
    /// The customer.
    pub customer_id: Uuid,
    /// Only lists in this currency.
    pub currency: String,
    /// Only these items.
    pub item_codes: Vec<String>,
}

/// The price list rules, over the store.
#[derive(Clone, Debug)]
pub struct PriceLists {
    store: Store,
    clock: Arc<dyn Clock>,
    contact_groups: ContactGroups,
}

impl PriceLists {
    /// The rules over `store`, reading time from `clock`; a customer's contact groups come
    /// from `contact_groups`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, contact_groups: ContactGroups) -> Self {
        Self {
            store,
            clock,
            contact_groups,
        }
    }

    /// Creates a price list.
    #[tracing::instrument(skip(self, admin, input), level = "debug", err(level = "debug"))]
    pub async fn create(
        &self,
        admin: &Administrator,
        input: &PriceListInput,
        request_id: Option<String>,
    ) -> Result<PriceList> {
        let now = self.clock.now();
        let mut list = PriceList {
            id: Uuid::now_v7(),
            name: String::new(),
            currency: String::new(),
            comment: String::new(),
            validity: Validity::Valid,
            items: Vec::new(),
            create_time: now,
            update_time: now,
            version: 1,
        };
        let mut violations = Violations::default();
        for field in PriceListField::ALL {
            apply(&mut violations, &mut list, field, input);
        }
        violations.finish()?;
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::PriceList,
            list.id,
            ChangeKind::Created,
            changes::diff(None, &audit(&list)),
        );
        let key = fields::idempotency_key("CreatePriceList", admin.actor(), request_id, input);
        let inserted = self
            .store
            .insert_price_list(&list, &event, key.as_ref())
            .await?;
        fields::created(inserted, key.as_ref(), async |id| {
            self.get(&admin.reader(), &PriceListKey::Id(id)).await
        })
        .await
    }

    /// Reads one price list with its items.
    pub async fn get(&self, _reader: &StaffReader, key: &PriceListKey) -> Result<PriceList> {
        let found = match key {
            PriceListKey::Id(id) => self.store.price_list(*id).await?,
            PriceListKey::Name(name) => self.store.price_list_by_name(name).await?,
        };
        found.ok_or(Error::NotFound {
            resource: "price list",
        })
    }

    /// Changes `fields` of price list `id`, if `etag` is current.
    #[tracing::instrument(skip(self, admin, input), level = "debug", err(level = "debug"))]
    pub async fn update(
        &self,
        admin: &Administrator,
        id: Uuid,
        etag: &str,
        fields: &[PriceListField],
        input: &PriceListInput,
    ) -> Result<PriceList> {
        let current = self.get(&admin.reader(), &PriceListKey::Id(id)).await?;
        check_etag("price list", &current.etag(), etag)?;
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            apply(&mut violations, &mut next, *field, input);
        }
        violations.finish()?;
        let changes = changes::diff(Some(&audit(&current)), &audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let items_changed = next.items != current.items;
        let event = changes::event(
            admin.actor(),
            next.update_time,
            ResourceType::PriceList,
            id,
            ChangeKind::Updated,
            changes,
        );
        self.store
            .update_price_list(&next, current.version, items_changed, &event)
            .await
    }

    /// One page of price lists, without their items.
    pub async fn list(
        &self,
        _reader: &StaffReader,
        include_invalid: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<PriceList>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&("price_lists", include_invalid));
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_price_lists(include_invalid, cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, price_list_cursor))
    }

    /// One page of the prices that apply to the customer of `query`, by item code (the rule
    /// is documented on `PriceListService.GetEffectivePrices`). A customer `scope` does not
    /// reach is NOT_FOUND.
    pub async fn effective(
        &self,
        scope: &Scope,
        query: &PriceQuery,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<EffectivePrice>> {
        let mut violations = Violations::default();
        let currency = if query.currency.is_empty() {
            None
        } else {
            Some(currency(&mut violations, "currency", &query.currency))
        };
        if query.item_codes.len() > MAX_ITEM_CODES {
            violations.add("item_codes", format!("at most {MAX_ITEM_CODES} item codes"));
        }
        let mut codes: Vec<String> = Vec::with_capacity(query.item_codes.len());
        for (index, code) in query.item_codes.iter().enumerate().take(MAX_ITEM_CODES) {
            codes.push(fold_case(&item_code(
                &mut violations,
                &format!("item_codes[{index}]"),
                code,
            )));
        }
        violations.finish()?;
        codes.sort();
        codes.dedup();
        let limit = paging::page_size(page_size)?;
        let fingerprint =
            paging::fingerprint(&("effective_prices", query.customer_id, &currency, &codes));
        let after: Option<String> = paging::decode_token(page_token, &fingerprint)?;
        let (memberships, _) = self
            .contact_groups
            .memberships_in(scope, Contact::Customer(query.customer_id), false)
            .await?;
        let groups: Vec<Uuid> = memberships.iter().map(|m| m.contact_group.id).collect();
        // Each list once, with its lowest precedence (the first group in the customer's order
        // among equals); then lower precedence first, older list first.
        let mut ranked: Vec<(i32, Uuid, Uuid, String)> = Vec::new();
        for (group, list, precedence, currency) in self
            .store
            .price_lists_of_groups(&groups, currency.as_deref())
            .await?
        {
            let order = |g: &Uuid| groups.iter().position(|x| x == g);
            match ranked.iter_mut().find(|(_, l, _, _)| *l == list) {
                Some(entry) if (precedence, order(&group)) < (entry.0, order(&entry.2)) => {
                    entry.0 = precedence;
                    entry.2 = group;
                }
                Some(_) => {}
                None => ranked.push((precedence, list, group, currency)),
            }
        }
        ranked.sort_by_key(|(precedence, list, _, _)| (*precedence, *list));
        let rank: HashMap<Uuid, usize> = ranked
            .iter()
            .enumerate()
            .map(|(index, (_, list, _, _))| (*list, index))
            .collect();
        let lists: Vec<Uuid> = ranked.iter().map(|(_, list, _, _)| *list).collect();
        // Every item has at most one row per list: this many rows hold the first limit + 1
        // items whole (but perhaps the last).
        let rows = self
            .store
            .price_items(
                &lists,
                after.as_deref(),
                &codes,
                (limit + 1).saturating_mul(lists.len().max(1) as u64),
            )
            .await?;
        let mut best: Vec<(String, usize, PriceItem)> = Vec::new();
        for (list, key, item) in rows {
            let Some(&position) = rank.get(&list) else {
                continue;
            };
            match best.last_mut() {
                Some((last, held, _)) if *last == key => {
                    if position < *held {
                        *held = position;
                        best.last_mut().expect("just matched").2 = item;
                    }
                }
                _ => best.push((key, position, item)),
            }
        }
        let prices: Vec<(String, EffectivePrice)> = best
            .into_iter()
            .take(limit as usize + 1)
            .map(|(key, position, item)| {
                let (precedence, list, group, currency) = ranked[position].clone();
                (
                    key,
                    EffectivePrice {
                        item,
                        currency,
                        price_list_id: list,
                        contact_group_id: group,
                        precedence,
                    },
                )
            })
            .collect();
        let page = paging::page(prices, limit, &fingerprint, |(key, _)| key.clone());
        Ok(Page {
            items: page.items.into_iter().map(|(_, price)| price).collect(),
            next_page_token: page.next_page_token,
        })
    }
}

/// An ISO 4217 code: three letters, answered upper case.
fn currency(violations: &mut Violations, field: &str, raw: &str) -> String {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        violations.add(
            field,
            "must be an ISO 4217 code: three letters, such as EUR",
        );
    }
    code
}

/// An item code: 1 to 64 printable characters without spaces.
fn item_code(violations: &mut Violations, field: &str, raw: &str) -> String {
    if raw.is_empty() {
        violations.add(field, "is required");
    } else if raw.chars().count() > 64 {
        violations.add(field, "must be at most 64 characters long");
    } else if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        violations.add(field, "must not contain spaces or control characters");
    }
    raw.to_owned()
}

fn apply(
    violations: &mut Violations,
    list: &mut PriceList,
    field: PriceListField,
    input: &PriceListInput,
) {
    let name = field.name();
    match field {
        PriceListField::Name => {
            list.name = fields::single_line(violations, name, &input.name, 100, true)
        }
        PriceListField::Currency => list.currency = currency(violations, name, &input.currency),
        PriceListField::Comment => {
            list.comment = fields::multi_line(violations, name, &input.comment, 10_000)
        }
        PriceListField::Validity => list.validity = input.validity.unwrap_or(Validity::Valid),
        PriceListField::Items => {
            if input.items.len() > MAX_ITEMS {
                violations.add(name, format!("at most {MAX_ITEMS} items"));
                return;
            }
            let mut items: Vec<PriceItem> = Vec::with_capacity(input.items.len());
            let mut seen: HashMap<String, usize> = HashMap::new();
            for (index, (code, item_name, price)) in input.items.iter().enumerate() {
                let code = item_code(violations, &format!("{name}[{index}].item_code"), code);
                if let Some(first) = seen.insert(fold_case(&code), index) {
                    violations.add(
                        format!("{name}[{index}].item_code"),
                        format!("repeats the item code of {name}[{first}]"),
                    );
                }
                let item_name = fields::single_line(
                    violations,
                    &format!("{name}[{index}].name"),
                    item_name,
                    200,
                    false,
                );
                let unit_price = match Price::parse(price) {
                    Some(price) => price,
                    None => {
                        violations.add(
                            format!("{name}[{index}].unit_price"),
                            "must be a decimal number of at most 12 digits, a dot and at most 4 \
                             more, such as 95.50",
                        );
                        Price(0)
                    }
                };
                items.push(PriceItem {
                    item_code: code,
                    name: item_name,
                    unit_price,
                });
            }
            items.sort_by_key(|item| fold_case(&item.item_code));
            list.items = items;
        }
    }
}

fn audit(list: &PriceList) -> Audit {
    vec![
        ("name", json!(list.name)),
        ("currency", json!(list.currency)),
        ("comment", json!(list.comment)),
        ("validity", json!(list.validity)),
        (
            "items",
            json!(
                list.items
                    .iter()
                    .map(|item| json!({
                        "item_code": item.item_code,
                        "name": item.name,
                        "unit_price": item.unit_price.to_string(),
                    }))
                    .collect::<Vec<_>>()
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::Price;

    #[test]
    fn prices_read_and_write_as_decimals_with_two_to_four_places() {
        for (raw, stored, shown) in [
            ("95", 950_000, "95.00"),
            ("95.5", 955_000, "95.50"),
            ("0.0125", 125, "0.0125"),
            ("000012.300", 123_000, "12.30"),
            (
                "999999999999.9999",
                9_999_999_999_999_999,
                "999999999999.9999",
            ),
        ] {
            let price = Price::parse(raw).unwrap_or_else(|| panic!("{raw} parses"));
            assert_eq!(price.0, stored, "{raw}");
            assert_eq!(price.to_string(), shown, "{raw}");
        }
        for bad in [
            "",
            ".5",
            "5.",
            "-1",
            "+1",
            "1e3",
            "1,5",
            " 1",
            "1.23456",
            "1234567890123",
            "1.2.3",
            "١٢",
        ] {
            assert_eq!(Price::parse(bad), None, "{bad:?}");
        }
    }
}
