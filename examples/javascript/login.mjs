// A login flow's backend calling otpservice: text a one-time code, let the user type it, check it.
//
//     make run                                         # in another terminal: the sandbox on :8080 and :8081
//     node examples/javascript/login.mjs +13125550123
//
// In the sandbox the phone is the simulator's outbox: curl 'localhost:8081/sim/messages?to=%2B13125550123'.
// Node 20 or later, no packages (the built-in fetch). OTP_URL and OTP_API_KEY point it at another service.
// In a web app, sendCode belongs in the route that takes the number and checkCode in the one that takes the
// code; main plays the user.
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";

const OTP_URL = process.env.OTP_URL ?? "http://127.0.0.1:8080";
const OTP_API_KEY = process.env.OTP_API_KEY ?? "sandbox-client-key";
const MAX_WAIT = 5; // the longest Retry-After worth waiting out while the user watches a spinner

/** This login cannot go on; the message is for the user. */
class LoginStopped extends Error {}
/** The user may type the code again; the message says why. */
class TypeAgain extends Error {}

/** POST JSON to otpservice: {status, body, wait} (wait: Retry-After seconds or 0). Every call has a timeout. */
async function post(path, body, headers = {}) {
  const answer = await fetch(OTP_URL + path, {
    method: "POST",
    headers: { Authorization: `Bearer ${OTP_API_KEY}`, "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: answer.status, body: await answer.json(), wait: Number(answer.headers.get("Retry-After") ?? 0) };
}

/** Text a code to the number; resolves to the verification id to check the code against. */
export async function sendCode(phoneNumber, clientIp) {
  // Pass the user's address as client_ip so the per-IP limits apply to them, not to this server.
  const body = { phone_number: phoneNumber, ...(clientIp ? { client_ip: clientIp } : {}) };
  // One key per login: should the retry below repeat a request that did get through, the service
  // replays its first answer instead of texting twice.
  const headers = { "Idempotency-Key": randomUUID() };
  let { status, body: answer, wait } = await post("/request-code", body, headers);
  if (status === 503 && wait <= MAX_WAIT) { // the SMS provider or the store is briefly unavailable
    console.log(`Texting is busy; trying again in ${wait} s.`);
    await sleep(wait * 1000);
    ({ status, body: answer, wait } = await post("/request-code", body, headers));
  }
  if (status === 202) return answer.verification_id;
  const error = answer.error.code;
  if (error === "rate_limited") { // the cooldown between texts, or a per-number, per-IP or global limit
    throw new LoginStopped(`Too many codes asked for: try again in ${wait} s.`);
  }
  if (error === "opted_out") {
    throw new LoginStopped("This number opted out of our texts (it replied STOP). Reply START to opt back in.");
  }
  if (error === "invalid_phone_number" || error === "unsupported_number_type") {
    throw new LoginStopped("That is not a mobile number we can text: check it and try again.");
  }
  if (error === "country_not_allowed") throw new LoginStopped("We do not text numbers in that country.");
  if (status === 503) throw new LoginStopped(`Texting is unavailable right now: try again in ${wait} s.`);
  // 400, 401, 502: a mistake in this backend or in the service's configuration, not the user's.
  throw new Error(`otpservice answered ${status}: ${answer.error.message}`);
}

/** Resolve when the code is right (it is now spent: start the session); else throw TypeAgain or LoginStopped. */
export async function checkCode(verificationId, code, clientIp) {
  const body = { verification_id: verificationId, code, ...(clientIp ? { client_ip: clientIp } : {}) };
  const { status, body: answer, wait } = await post("/verify", body);
  if (status === 200 && answer.valid) return;
  if (status === 200 && answer.attempts_remaining > 0) {
    throw new TypeAgain(`That code is wrong. Tries left: ${answer.attempts_remaining}.`);
  }
  if (status === 200 || answer.error.code === "max_attempts_reached") {
    throw new LoginStopped("Too many wrong codes: ask for a new one.");
  }
  if (status === 400 && answer.error.field === "code") { // not the right shape: no try was used
    throw new TypeAgain("Type the digits of the code, and nothing else.");
  }
  if (status === 404) throw new LoginStopped("That code has expired: ask for a new one.");
  if (status === 429) throw new LoginStopped(`Too many wrong codes: try again in ${wait} s.`); // from this address
  if (status === 503) { // nothing was checked and the code stays good
    throw new TypeAgain("We cannot check codes right now: type it again in a moment.");
  }
  throw new Error(`otpservice answered ${status}: ${answer.error.message}`);
}

async function main() {
  if (process.argv.length !== 3) {
    console.error("usage: node login.mjs +13125550123");
    return 2;
  }
  const terminal = createInterface({ input: process.stdin });
  const lines = terminal[Symbol.asyncIterator](); // keeps what is typed before the prompt asks
  try {
    const verificationId = await sendCode(process.argv[2]);
    console.log("We texted you a code.");
    for (;;) {
      process.stdout.write("Code: ");
      const line = await lines.next();
      if (line.done) throw new LoginStopped("No code typed.");
      try {
        await checkCode(verificationId, line.value.trim());
        break;
      } catch (reason) {
        if (!(reason instanceof TypeAgain)) throw reason;
        console.log(reason.message);
      }
    }
  } catch (reason) {
    if (!(reason instanceof LoginStopped)) throw reason;
    console.log(reason.message);
    return 1;
  } finally {
    terminal.close();
  }
  console.log("Logged in.");
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = await main();
