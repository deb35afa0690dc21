/**
 * What qpsmtpd's virus plugins ask of a Content-Type field before scanning: whether the message
 * is multipart with a boundary (only such a message can carry an attachment). Their test, kept as
 * it was (`multipart/... boundary=` anywhere in the unfolded value, in any case).
 */
export function isMultipart(contentType: string | undefined): boolean {
  if (contentType === undefined) return false
  return /\bmultipart\/.*\bboundary="?[^"\s]/i.test(contentType.replace(/\s/g, ' '))
}
