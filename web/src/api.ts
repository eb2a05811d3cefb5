// The typed client of the server's read API (/api/v1). Every call sends the signed-in key.
import { apiKey, signOut } from "./session";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Viewer {
  user: string;
  admin: boolean;
  entities: string[];
  default_entity: string;
  server?: { version: string; data_dir?: string; database?: string }; // data_dir, database: admins
}

export interface Project {
  name: string;
  created_at: number;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Run {
  id: string;
  entity: string;
  project: string;
  name: string;
  group: string | null;
  job_type: string | null;
  tags: string[];
  notes: string | null;
  state: "running" | "finished" | "failed" | "crashed";
  config: Record<string, Json>;
  summary: Record<string, Json>;
  created_at: number;
  heartbeat_at: number;
  finished_at: number | null;
  host: string | null;
  program: string | null;
  git_commit: string | null;
  exit_code: number | null;
  last_seq: number;
  last_step: number | null;
  user?: string | null; // the user whose API key created the run (null: not recorded)
  writers?: Writer[]; // a shared run's labelled writers (one-writer runs: none)
  system_keys?: string[]; // its system metrics ("system/cpu.percent"), on their own time axis
}

/** One labelled writer of a shared run (GET /runs/...: ``writers``). */
export interface Writer {
  label: string;
  primary: boolean;
  state: string; // running | finished | failed | crashed
  host: string | null;
  pid: number | null;
  last_seq: number;
  last_step: number | null;
  started_at: number | null;
  finished_at: number | null;
  exit_code: number | null;
}

/** One console line a run printed (GET /runs/.../logs). */
export interface LogLine {
  line: number; // 1, 2, ... per run
  time: number;
  stream: string; // stdout | stderr
  writer: string; // the writer's label ("" for a run's only writer)
  text: string;
}

export interface LogPage {
  lines: LogLine[];
  last_line: number; // the run's highest line number
}

export interface RunsQuery {
  filters?: object;
  order?: string; // "-created_at", "+name", "+config.lr", "-summary.loss"
  limit?: number;
  offset?: number;
  search?: string; // in the run's name or id, case ignored
}

export interface RunsPage {
  runs: Run[];
  total?: number; // present once the server pages the list itself
}

export interface RunFile {
  name: string;
  size: number;
  updated: number;
}

/** What a 401 does: forget the key and show the sign-in page. */
let onUnauthorized: () => void = () => undefined;
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

function url(path: string, params: Record<string, string | number | undefined> = {}): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return "/api/v1" + path + (text ? "?" + text : "");
}

interface Send {
  method?: "GET" | "POST";
  body?: unknown; // sent as JSON
  accept?: string;
}

async function request(
  path: string,
  params?: Record<string, string | number | undefined>,
  key?: string,
  send: Send = {},
): Promise<Response> {
  const token = key ?? apiKey();
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  if (send.accept) headers.Accept = send.accept;
  if (send.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url(path, params), {
    method: send.method ?? "GET",
    headers,
    body: send.body === undefined ? undefined : JSON.stringify(send.body),
  });
  if (response.ok) return response;
  let code = "http_error";
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
  } catch {
    // not a JSON error body; the status says enough
  }
  if (response.status === 401 && key === undefined) {
    signOut();
    onUnauthorized();
  }
  throw new ApiError(response.status, code, message);
}

export async function get<T>(path: string, params?: Record<string, string | number | undefined>): Promise<T> {
  return (await request(path, params)).json() as Promise<T>;
}

/** POST ``body`` as JSON; the raw response (``accept``: the answer's format). */
export function post(path: string, body: unknown, accept?: string): Promise<Response> {
  return request(path, undefined, undefined, { method: "POST", body, accept });
}

/** A file the read API serves (a blob, a run file), fetched with the key: never a key in a URL. */
export async function blob(path: string): Promise<Blob> {
  const rel = path.startsWith("/api/v1") ? path.slice("/api/v1".length) : path;
  return (await request(rel)).blob();
}

const seg = encodeURIComponent;

/** The user behind ``key`` (checks a key before it is kept). */
export async function viewerFor(key: string): Promise<Viewer> {
  return (await request("/viewer", undefined, key)).json();
}

export const viewer = (): Promise<Viewer> => get("/viewer");

export async function projects(entity: string): Promise<Project[]> {
  return (await get<{ projects: Project[] }>(`/entities/${seg(entity)}/projects`)).projects;
}

export function runs(entity: string, project: string, q: RunsQuery): Promise<RunsPage> {
  return get(`/entities/${seg(entity)}/projects/${seg(project)}/runs`, {
    filters: q.filters && Object.keys(q.filters).length ? JSON.stringify(q.filters) : undefined,
    order: q.order,
    limit: q.limit,
    offset: q.offset,
    search: q.search,
  });
}

export const run = (e: string, p: string, id: string): Promise<Run> =>
  get(`/runs/${seg(e)}/${seg(p)}/${seg(id)}`);

/** At most ``limit`` console lines of a run numbered above ``after``. */
export const logs = (e: string, p: string, id: string, after: number, limit: number): Promise<LogPage> =>
  get(`/runs/${seg(e)}/${seg(p)}/${seg(id)}/logs`, { after, limit });

export type MediaByKey = Record<string, { step: number; value: Json }[]>;

/** A run's rich values (images, histograms, tables) by key, each a list of {step, value}. */
export async function media(e: string, p: string, id: string, keys: string[]): Promise<MediaByKey> {
  const path = `/runs/${seg(e)}/${seg(p)}/${seg(id)}/media`;
  return (await get<{ media: MediaByKey }>(path, { keys: keys.join(",") })).media;
}

export async function files(e: string, p: string, id: string): Promise<RunFile[]> {
  return (await get<{ files: RunFile[] }>(`/runs/${seg(e)}/${seg(p)}/${seg(id)}/files`)).files;
}

/** Download a run file: fetched with the key (never put in a link), saved from a blob URL. */
export async function download(e: string, p: string, id: string, path: string): Promise<void> {
  const encoded = path.split("/").map(seg).join("/");
  const blob = await (await request(`/runs/${seg(e)}/${seg(p)}/${seg(id)}/files/${encoded}`)).blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = path.split("/").pop() ?? "file";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
