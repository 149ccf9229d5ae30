//! `clientele.v1.DirectoryService`.

use tonic::{Request, Response, Status};

use super::{admin, parse_id, parse_ids, staff, timestamp};
use crate::{
    domain::{
        Directories,
        directory::{DirectoryField, DirectoryInput},
    },
    error::{Error, Result},
    model::Directory,
    proto::v1::{self as pb, directory_service_server::DirectoryService},
};

/// The gRPC face of [`Directories`].
#[derive(Clone, Debug)]
pub struct DirectoryApi {
    directories: Directories,
}

impl DirectoryApi {
    /// Serves `directories`.
    pub fn new(directories: Directories) -> Self {
        Self { directories }
    }
}

#[tonic::async_trait]
impl DirectoryService for DirectoryApi {
    async fn create_directory(
        &self,
        request: Request<pb::CreateDirectoryRequest>,
    ) -> Result<Response<pb::CreateDirectoryResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let request_id = crate::domain::fields::request_id(&request.request_id)?;
        let within = |e: Error| e.within("directory");
        let input = input(request.directory.unwrap_or_default()).map_err(within)?;
        let directory = self
            .directories
            .create(&admin, &input, request_id)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::CreateDirectoryResponse {
            directory: Some(to_proto(directory)),
        }))
    }

    async fn get_directory(
        &self,
        request: Request<pb::GetDirectoryRequest>,
    ) -> Result<Response<pb::GetDirectoryResponse>, Status> {
        let reader = staff(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let directory = self.directories.get(&reader, id).await?;
        Ok(Response::new(pb::GetDirectoryResponse {
            directory: Some(to_proto(directory)),
        }))
    }

    async fn update_directory(
        &self,
        request: Request<pb::UpdateDirectoryRequest>,
    ) -> Result<Response<pb::UpdateDirectoryResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields =
            DirectoryField::from_mask(&request.update_mask.map(|m| m.paths).unwrap_or_default())?;
        let directory = request.directory.unwrap_or_default();
        let id = parse_id("directory.id", &directory.id)?;
        let etag = directory.etag.clone();
        let within = |e: Error| e.within("directory");
        let input = input(directory).map_err(within)?;
        let directory = self
            .directories
            .update(&admin, id, &etag, &fields, &input)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::UpdateDirectoryResponse {
            directory: Some(to_proto(directory)),
        }))
    }

    async fn list_directories(
        &self,
        request: Request<pb::ListDirectoriesRequest>,
    ) -> Result<Response<pb::ListDirectoriesResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let page = self
            .directories
            .list(&reader, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListDirectoriesResponse {
            directories: page.items.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

fn input(directory: pb::Directory) -> Result<DirectoryInput> {
    let (reader_agent_ids, reader_group_ids) = super::both(
        parse_ids("reader_agent_ids", &directory.reader_agent_ids),
        parse_ids("reader_group_ids", &directory.reader_group_ids),
    )?;
    Ok(DirectoryInput {
        name: directory.name,
        comment: directory.comment,
        reader_agent_ids,
        reader_group_ids,
    })
}

fn to_proto(directory: Directory) -> pb::Directory {
    pb::Directory {
        etag: directory.etag(),
        id: directory.id.to_string(),
        name: directory.name,
        comment: directory.comment,
        reader_agent_ids: ids(&directory.reader_agent_ids),
        reader_group_ids: ids(&directory.reader_group_ids),
        create_time: Some(timestamp(directory.create_time)),
        update_time: Some(timestamp(directory.update_time)),
    }
}

fn ids(ids: &[uuid::Uuid]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}
