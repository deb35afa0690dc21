/** The version shown in greetings, Received headers and `--version`. */
export const version = '0.1.0'
