// A loopback TCP proxy in front of an emulator, so a scenario can make a dependency "stop and come back"
// without losing the emulator's in-memory state: `cut()` closes the listener and drops every open
// connection (clients see ECONNREFUSED / ECONNRESET, as when the process is down), `restore()` listens
// again on the same port. Bytes are piped untouched.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export type TcpProxy = {
  /** `http://127.0.0.1:<proxy port>`: what clients are given instead of the emulator's endpoint. */
  readonly url: string;
  readonly port: number;
  readonly target: string;
  isUp(): boolean;
  cut(): Promise<void>;
  restore(): Promise<void>;
  stop(): Promise<void>;
};

export const startTcpProxy = async (targetEndpoint: string): Promise<TcpProxy> => {
  const target = new URL(targetEndpoint);
  const targetPort = Number(target.port);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };

  const listen = async (): Promise<void> => {
    const next = createServer((client) => {
      const upstream = createConnection({ host: target.hostname, port: targetPort });
      track(client);
      track(upstream);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      next.once("error", reject);
      next.listen(port, "127.0.0.1", () => {
        next.off("error", reject);
        resolve();
      });
    });
    const address = next.address();
    port = typeof address === "object" && address !== null ? address.port : port;
    server = next;
  };

  const cut = async (): Promise<void> => {
    const current = server;
    server = undefined;
    if (current === undefined) return;
    const closed = new Promise<void>((resolve) => current.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };

  await listen();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    target: targetEndpoint,
    isUp: () => server !== undefined,
    cut,
    restore: async () => {
      if (server === undefined) await listen();
    },
    stop: cut,
  };
};
