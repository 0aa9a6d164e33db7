/** What a hub client gives the downloader: one revision's file list, and how to request one file. */
import type { RequestContext, RetryOptions } from "./http.js";

export interface RemoteFile {
  /** Path inside the repository, "/"-separated. */
  path: string;
  /** Bytes (the LFS object's size for LFS files, not the pointer's). */
  size: number;
  /** The cache blob name: the Hub's ETag (LFS: the sha256; other files: the git blob sha1). */
  etag: string;
  /** Hex SHA-256 of the content when the server gives one (Hub: LFS files; ModelScope: every file). */
  sha256?: string;
  /** Hex git blob SHA-1 (sha1("blob <size>\0" + content)) for the Hub's non-LFS files. */
  gitSha1?: string;
  lfs: boolean;
}

export interface Listing {
  repo: string;
  /** What the user asked for (branch, tag or commit). */
  revision: string;
  /** The commit the files come from: the snapshot folder's name. */
  commit: string;
  files: RemoteFile[];
}

export interface FileRequest {
  url: string;
  headers: Record<string, string>;
}

export interface HubSource {
  /** For messages: "the Hugging Face Hub (https://huggingface.co)". */
  readonly label: string;
  /** "main" on the Hub, "master" on ModelScope. */
  readonly defaultRevision: string;
  /** Retry settings for its requests (the downloads too, unless the pull gives its own). */
  readonly retry?: RetryOptions;
  list(repo: string, revision: string, signal?: AbortSignal): Promise<Listing>;
  fileRequest(listing: Listing, file: RemoteFile): FileRequest;
  /** What a request was for, to word its errors. */
  ctx(repo: string, revision: string, path?: string): RequestContext;
  /** Checks on the headers of the first response (before redirects), e.g. the Hub's X-Linked-Size; throws on a mismatch. */
  checkHeaders?(listing: Listing, file: RemoteFile, headers: Headers): void;
}
