import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ZodError } from 'zod';
import { formatPath } from '../config/load';

/** An error whose message is safe to show the caller. Anything else becomes a generic 500. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Array<{ path: string; message: string }>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const notFound = (what: string) => new HttpError(404, 'not_found', `${what} not found`);
export const forbidden = (why: string) => new HttpError(403, 'forbidden', why);

export function sendError(reply: FastifyReply, req: FastifyRequest, err: HttpError) {
  return reply.status(err.status).send({
    error: {
      code: err.code,
      message: err.message,
      requestId: req.id,
      ...(err.details ? { details: err.details } : {}),
    },
  });
}

export function validationError(err: ZodError, where: 'body' | 'query' | 'params'): HttpError {
  const details = err.issues.map((i) => ({
    path: formatPath(i.path) || where,
    message:
      i.code === 'unrecognized_keys'
        ? `unknown key(s): ${i.keys.join(', ')}`
        : i.message.replace(/^Invalid input: /, ''),
  }));
  return new HttpError(
    400,
    'invalid_request',
    `invalid ${where}: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`,
    details,
  );
}

/**
 * The one error handler. It never echoes request content back: a JSON parse
 * error message from V8 quotes the body, and the body may hold a credential.
 */
export function errorHandler(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply) {
  if (err instanceof HttpError) return sendError(reply, req, err);
  if (err instanceof ZodError) return sendError(reply, req, validationError(err, 'body'));
  const fe = err as FastifyError;
  if (fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (fe.statusCode === 400 && err instanceof SyntaxError)) {
    return sendError(reply, req, new HttpError(400, 'invalid_json', 'request body is not valid JSON'));
  }
  if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return sendError(
      reply,
      req,
      new HttpError(400, 'invalid_json', 'request body is empty but content-type is JSON'),
    );
  }
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return sendError(reply, req, new HttpError(415, 'unsupported_media_type', 'send application/json'));
  }
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return sendError(reply, req, new HttpError(413, 'body_too_large', 'request body is too large'));
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return sendError(reply, req, new HttpError(fe.statusCode, 'bad_request', 'bad request'));
  }
  req.log.error({ err: { type: err.name, message: err.message, stack: err.stack } }, 'unhandled error');
  return sendError(
    reply,
    req,
    new HttpError(500, 'internal', 'internal error; see the gateway log for this request id'),
  );
}
