import { Packr } from "msgpackr";

/** The RPC envelope codec: plain maps/arrays/binary, no msgpackr records, so any msgpack client can talk to silo. */
export const envelope = new Packr({ useRecords: false, moreTypes: false, int64AsType: "number" });

/** Content type of msgpack RPC bodies (JSON is accepted too, so curl works). */
export const MSGPACK = "application/msgpack";
