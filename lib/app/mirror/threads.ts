// The customer's thread: found from the mapping (hot path), else adopted from a conversation that
// already binds the customer or created under the first unique-name generation that is not closed
// (cold path); binding the customer into it, and recording what we learn about threads we cannot write.
import type { TenantMirrorSettings } from "../../config/mirror-config.ts";
import {
  type CustomerKey,
  conversationAttributes,
  customerKey,
  parseThreadUniqueName,
  threadUniqueName,
} from "../../domain/mirror.ts";
import { BindingConflictError, ThreadUnavailableError } from "../errors.ts";
import type { MirrorDeps, ThreadInfo, ThreadMapping } from "./ports.ts";
import { idempotent } from "./twilio-retry.ts";

const MaxGenerationProbe = 20;
/** How often one record may find its thread closed or deleted under it and move to a replacement. */
export const MaxThreadReplacements = 3;

export type Customer = {
  readonly key: CustomerKey;
  /** Our number (or WhatsApp sender) the customer talks to: the participant's proxy address. */
  readonly proxyAddress: string | undefined;
  readonly messagingServiceSid: string | undefined;
  readonly settings: TenantMirrorSettings;
  /** Event time (epoch ms) of the record being processed. */
  readonly at: number;
  /**
   * Bind only after posting: Twilio delivers whatever is posted to a bound customer, so a system copy
   * of an outbound message must land before the binding exists (see `bindAfterPost`).
   */
  readonly bindAfterPost: boolean;
};

export const customerOf = (
  deps: MirrorDeps,
  tenantId: string,
  address: string,
  proxyAddress: string | undefined,
  messagingServiceSid: string | undefined,
  at: number,
  bindAfterPost = false,
): Customer => {
  const settings = deps.settingsFor(tenantId);
  return {
    key: customerKey(tenantId, address),
    proxyAddress,
    messagingServiceSid: settings.messagingServiceSid ?? messagingServiceSid,
    settings,
    at,
    bindAfterPost,
  };
};

const sameCustomer = (a: CustomerKey, b: CustomerKey): boolean =>
  a.tenantId === b.tenantId && a.channel === b.channel && a.address === b.address;

/** The customer's thread, from the mapping (hot path: one DynamoDB read) or found/created (cold path). */
export const resolveThread = async (
  deps: MirrorDeps,
  customer: Customer,
  stale?: string,
): Promise<ThreadMapping> => {
  const current = await deps.threads.get(customer.key);
  if (current !== undefined && current.conversationSid !== stale) {
    return customer.bindAfterPost ? current : ensureBound(deps, customer, current);
  }
  return openThread(deps, customer, current);
};

const ensureBound = async (deps: MirrorDeps, customer: Customer, mapping: ThreadMapping) => {
  const proxyAddress = customer.proxyAddress;
  if (mapping.bound || !customer.settings.bindCustomer || proxyAddress === undefined) return mapping;
  const result = await idempotent(deps, () =>
    deps.twilio.addCustomer(mapping.conversationSid, { address: customer.key.address, proxyAddress }),
  );
  switch (result.kind) {
    case "bound":
    case "already-bound": {
      const at = deps.now();
      await deps.threads.markBound(customer.key, mapping.conversationSid, { proxyAddress, at });
      return { ...mapping, bound: true, boundAt: at, proxyAddress };
    }
    case "thread-closed":
      return openThread(deps, customer, mapping);
    case "bound-elsewhere":
      return adoptHolder(deps, customer, mapping, result.holderSid);
  }
};

/** An active conversation that already binds this customer to this proxy (autocreation, Flex, lost mapping). */
const findHolder = async (deps: MirrorDeps, customer: Customer, exclude: string | undefined) => {
  const held = await idempotent(deps, () => deps.twilio.bindingsOf(customer.key.address));
  return held.find(
    (binding) =>
      binding.proxyAddress === customer.proxyAddress &&
      binding.state !== "closed" &&
      binding.conversationSid !== exclude,
  );
};

const adopt = async (
  deps: MirrorDeps,
  customer: Customer,
  current: ThreadMapping | undefined,
  holder: ThreadInfo,
): Promise<ThreadMapping> => {
  const parsed = holder.uniqueName === undefined ? undefined : parseThreadUniqueName(holder.uniqueName);
  const ours = parsed !== undefined && sameCustomer(parsed.key, customer.key);
  await deps.registry.touch({
    conversationSid: holder.conversationSid,
    tenantId: customer.key.tenantId,
    at: customer.at,
  });
  return deps.threads.put(
    customer.key,
    {
      conversationSid: holder.conversationSid,
      uniqueName: holder.uniqueName,
      generation: ours ? parsed.generation : (current?.generation ?? 0),
      origin: ours ? "created" : "adopted",
      bound: true,
      // When the holder bound the pair is unknown: treat every message as possibly captured.
      boundAt: 0,
      proxyAddress: customer.proxyAddress,
    },
    current?.conversationSid,
  );
};

const adoptHolder = async (
  deps: MirrorDeps,
  customer: Customer,
  current: ThreadMapping | undefined,
  holderSid: string | undefined,
): Promise<ThreadMapping> => {
  // The SID in 50416's message is a convenience; ParticipantConversations is the source of truth.
  const named =
    holderSid === undefined ? undefined : await idempotent(deps, () => deps.twilio.fetchThread(holderSid));
  const holder =
    named !== undefined && named.state !== "closed"
      ? named
      : await findHolder(deps, customer, current?.conversationSid);
  if (holder === undefined) {
    throw new BindingConflictError("the customer's binding is held by a conversation that cannot be found");
  }
  return adopt(deps, customer, current, holder);
};

const deleteQuietly = async (deps: MirrorDeps, conversationSid: string): Promise<void> => {
  // Best effort: an empty thread we just made and lost to an existing binding. If this fails, the
  // orphan is an empty conversation that the registry never saw; nothing routes to it.
  await deps.twilio.deleteThread(conversationSid).catch(() => undefined);
};

/**
 * Cold path: adopt a conversation that already binds the customer, else create (or join a concurrent
 * creator's) thread under the first unique-name generation that is not closed, bind the customer, and
 * store the mapping with a conditional write.
 */
const openThread = async (
  deps: MirrorDeps,
  customer: Customer,
  current: ThreadMapping | undefined,
): Promise<ThreadMapping> => {
  const proxyAddress = customer.proxyAddress;
  if (proxyAddress !== undefined) {
    const holder = await findHolder(deps, customer, current?.conversationSid);
    if (holder !== undefined) return adopt(deps, customer, current, holder);
  }
  const start = (current?.generation ?? 0) + 1;
  for (let generation = start; generation < start + MaxGenerationProbe; generation += 1) {
    const uniqueName = threadUniqueName(customer.key, generation);
    const created = await idempotent(deps, () =>
      deps.twilio.createThread({
        uniqueName,
        attributes: conversationAttributes(customer.key, generation),
        messagingServiceSid: customer.messagingServiceSid,
        timers: customer.settings.timers,
      }),
    );
    let conversationSid: string;
    if (created.kind === "created") {
      conversationSid = created.conversationSid;
    } else {
      const existing = await idempotent(deps, () => deps.twilio.fetchThread(uniqueName));
      if (existing === undefined || existing.state === "closed") continue;
      conversationSid = existing.conversationSid;
    }
    let boundAt = 0;
    if (customer.settings.bindCustomer && proxyAddress !== undefined && !customer.bindAfterPost) {
      const bind = await idempotent(deps, () =>
        deps.twilio.addCustomer(conversationSid, { address: customer.key.address, proxyAddress }),
      );
      if (bind.kind === "thread-closed") continue;
      if (bind.kind === "bound-elsewhere") {
        if (created.kind === "created") await deleteQuietly(deps, conversationSid);
        return adoptHolder(deps, customer, current, bind.holderSid);
      }
      boundAt = deps.now();
    }
    await deps.registry.touch({ conversationSid, tenantId: customer.key.tenantId, at: customer.at });
    return deps.threads.put(
      customer.key,
      {
        conversationSid,
        uniqueName,
        generation,
        origin: "created",
        bound: boundAt > 0,
        boundAt,
        proxyAddress,
      },
      current?.conversationSid,
    );
  }
  throw new ThreadUnavailableError(`no open thread within ${MaxGenerationProbe} unique-name generations`);
};

/**
 * Binds the customer into the thread that just took a post. A closed thread is left alone (the post
 * landed, so it closed just now; the next message replaces it); a conflict repoints the mapping.
 */
export const bindAfterPost = async (
  deps: MirrorDeps,
  customer: Customer,
  thread: ThreadMapping,
): Promise<void> => {
  const proxyAddress = customer.proxyAddress;
  if (thread.bound || !customer.settings.bindCustomer || proxyAddress === undefined) return;
  const result = await idempotent(deps, () =>
    deps.twilio.addCustomer(thread.conversationSid, { address: customer.key.address, proxyAddress }),
  );
  if (result.kind === "bound" || result.kind === "already-bound") {
    await deps.threads.markBound(customer.key, thread.conversationSid, { proxyAddress, at: deps.now() });
  } else if (result.kind === "bound-elsewhere") {
    await adoptHolder(deps, customer, thread, result.holderSid);
  }
};

/** A thread we could not write to: record what we learnt, so the closer stops considering it. */
export const noteUnwritable = async (
  deps: Pick<MirrorDeps, "registry" | "now">,
  conversationSid: string,
  kind: "thread-closed" | "thread-gone",
  tenantId: string,
) => {
  await deps.registry.setState({
    conversationSid,
    tenantId,
    state: kind === "thread-closed" ? "closed" : "deleted",
    at: deps.now(),
    outcome: "observed-by-mirror",
  });
};

/**
 * Whether Twilio delivers what is posted in this thread to the customer. A mapping that says bound is
 * trusted: if it is stale, withholding a copy costs the thread a message body, never the customer a
 * second message. A mapping that says unbound is checked, because a binding made by someone else (an
 * agent, a crash between binding and recording it) would turn a copy into a second delivery; what the
 * check finds is written back to the mapping.
 */
export const withBindingChecked = async (
  deps: MirrorDeps,
  customer: Customer,
  thread: ThreadMapping,
): Promise<ThreadMapping> => {
  if (thread.bound) return thread;
  const binding = await idempotent(deps, () =>
    deps.twilio.participantBinding(thread.conversationSid, customer.key.address),
  );
  if (binding === undefined) return thread;
  const proxyAddress = binding.proxyAddress ?? thread.proxyAddress;
  // When the binding was made is unknown: 0 makes every later inbound message a possible capture.
  if (proxyAddress !== undefined) {
    await deps.threads.markBound(customer.key, thread.conversationSid, { proxyAddress, at: 0 });
  }
  return { ...thread, bound: true, boundAt: 0, proxyAddress };
};
