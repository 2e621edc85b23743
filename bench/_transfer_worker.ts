// Worker of the plain-postMessage baseline of bench/pool_bench.ts's large
// argument case: receives a Uint8Array whose buffer was transferred, and
// replies with its length, or with the array itself, transferring it back.

/** A request: the bytes (transferred) and what to reply. */
export interface TransferRequest {
  bytes: Uint8Array<ArrayBuffer>;
  reply: "length" | "bytes";
}

/** The global scope, typed here because `deno check` types files with the window lib. */
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<TransferRequest>) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

scope.onmessage = (event) => {
  const { bytes, reply } = event.data;
  if (reply === "length") scope.postMessage(bytes.byteLength);
  else scope.postMessage(bytes, [bytes.buffer]);
};
