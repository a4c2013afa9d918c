//! Table definitions come from `template.yaml` only: the local stack reads every
//! `AWS::DynamoDB::Table` resource and creates exactly that on the stand-in.

use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use serde::Deserialize;
use serde_yaml::Value;

/// A table as the template declares it (the subset DynamoDB Local needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The template's logical id; also the local table's name.
    pub logical_id: String,
    pub attributes: Vec<(String, String)>,
    pub key_schema: Vec<(String, String)>,
    pub indexes: Vec<IndexSpec>,
    pub ttl_attribute: Option<String>,
    pub stream_view_type: Option<String>,
}

/// A global secondary index as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    pub projection: String,
}

/// Reading the template failed.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template.yaml: table {table}: {problem}")]
    Table { table: String, problem: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attribute {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Key {
    attribute_name: String,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Gsi {
    index_name: String,
    key_schema: Vec<Key>,
    projection: ProjectionDecl,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProjectionDecl {
    projection_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableProperties {
    attribute_definitions: Vec<Attribute>,
    key_schema: Vec<Key>,
    #[serde(default)]
    global_secondary_indexes: Vec<Gsi>,
    time_to_live_specification: Option<TtlDecl>,
    stream_specification: Option<StreamDecl>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlDecl {
    attribute_name: String,
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamDecl {
    stream_view_type: String,
}

fn keys(list: Vec<Key>) -> Vec<(String, String)> {
    list.into_iter()
        .map(|k| (k.attribute_name, k.key_type))
        .collect()
}

/// Every table the template at `path` declares, in template order.
pub fn from_template(path: &Path) -> Result<Vec<TableSpec>, TemplateError> {
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_template(&text)
}

/// Every table declared in template text.
pub fn parse_template(text: &str) -> Result<Vec<TableSpec>, TemplateError> {
    let doc: Value = serde_yaml::from_str(text)?;
    let mut specs = Vec::new();
    let Some(resources) = doc.get("Resources").and_then(Value::as_mapping) else {
        return Ok(specs);
    };
    for (id, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::DynamoDB::Table") {
            continue;
        }
        let logical_id = id.as_str().unwrap_or_default().to_owned();
        let properties = resource.get("Properties").cloned().unwrap_or(Value::Null);
        let props: TableProperties =
            serde_yaml::from_value(properties).map_err(|e| TemplateError::Table {
                table: logical_id.clone(),
                problem: e.to_string(),
            })?;
        specs.push(TableSpec {
            logical_id,
            attributes: props
                .attribute_definitions
                .into_iter()
                .map(|a| (a.attribute_name, a.attribute_type))
                .collect(),
            key_schema: keys(props.key_schema),
            indexes: props
                .global_secondary_indexes
                .into_iter()
                .map(|g| IndexSpec {
                    name: g.index_name,
                    key_schema: keys(g.key_schema),
                    projection: g.projection.projection_type,
                })
                .collect(),
            ttl_attribute: props
                .time_to_live_specification
                .filter(|t| t.enabled)
                .map(|t| t.attribute_name),
            stream_view_type: props.stream_specification.map(|s| s.stream_view_type),
        });
    }
    Ok(specs)
}

fn key_elements(keys: &[(String, String)]) -> Result<Vec<KeySchemaElement>, String> {
    keys.iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Creates `spec` on the DynamoDB endpoint of `client` (no-op when it already exists) and
/// turns on its TTL.
pub async fn create(client: &aws_sdk_dynamodb::Client, spec: &TableSpec) -> Result<(), String> {
    let exists = client
        .describe_table()
        .table_name(&spec.logical_id)
        .send()
        .await
        .is_ok();
    if !exists {
        let mut request = client
            .create_table()
            .table_name(&spec.logical_id)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(key_elements(&spec.key_schema)?));
        for (name, kind) in &spec.attributes {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        for index in &spec.indexes {
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&index.name)
                    .set_key_schema(Some(key_elements(&index.key_schema)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(index.projection.as_str()))
                            .build(),
                    )
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        if let Some(view) = &spec.stream_view_type {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view.as_str()))
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        request.send().await.map_err(|e| {
            format!(
                "CreateTable {}: {}",
                spec.logical_id,
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
        })?;
    }
    if let Some(attribute) = &spec.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(true)
            .build()
            .map_err(|e| e.to_string())?;
        // DynamoDB Local accepts the setting (it does not expire items); a repeat is refused
        // with "TTL is already enabled", which is fine.
        let _ = client
            .update_time_to_live()
            .table_name(&spec.logical_id)
            .time_to_live_specification(ttl)
            .send()
            .await;
    }
    Ok(())
}

/// Reads back a live table as a [`TableSpec`], to compare with the template.
pub async fn describe(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<TableSpec, String> {
    let out = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
    let table = out.table.ok_or("no table description")?;
    let keys = |list: &[KeySchemaElement]| -> Vec<(String, String)> {
        list.iter()
            .map(|k| {
                (
                    k.attribute_name().to_owned(),
                    k.key_type().as_str().to_owned(),
                )
            })
            .collect()
    };
    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.time_to_live_description)
        .filter(|d| {
            d.time_to_live_status()
                .is_some_and(|s| s.as_str() != "DISABLED")
        })
        .and_then(|d| d.attribute_name);
    let mut attributes: Vec<(String, String)> = table
        .attribute_definitions()
        .iter()
        .map(|a| {
            (
                a.attribute_name().to_owned(),
                a.attribute_type().as_str().to_owned(),
            )
        })
        .collect();
    attributes.sort();
    Ok(TableSpec {
        logical_id: name.to_owned(),
        attributes,
        key_schema: keys(table.key_schema()),
        indexes: table
            .global_secondary_indexes()
            .iter()
            .map(|g| IndexSpec {
                name: g.index_name().unwrap_or_default().to_owned(),
                key_schema: keys(g.key_schema()),
                projection: g
                    .projection()
                    .and_then(|p| p.projection_type())
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
            })
            .collect(),
        ttl_attribute: ttl,
        stream_view_type: table
            .stream_specification()
            .filter(|s| s.stream_enabled())
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str().to_owned()),
    })
}
