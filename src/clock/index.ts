/** The clock service: the system clock for the server, a fake one for tests. */
export { type Clock, systemClock } from './clock.ts'
export { type FakeClock, fakeClock } from './fake.ts'
