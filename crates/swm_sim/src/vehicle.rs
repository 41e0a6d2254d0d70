//! Vehicles: routes on the lane graph, IDM car following, MOBIL lane changes, junction
//! rules (signals, give-way, all-way stops, conflict-zone reservations), pedestrian
//! crossings, deadlock resolution, spawning and despawning.
//!
//! # Rules
//! * **Kinds**: car 4.5 x 1.8 m (85 %), bus 12 x 2.5 m (5 %), truck 8 x 2.4 m (10 %).
//! * **Demand**: origins are source lanes without incoming connections (70 %) or interior
//!   lanes, destinations sink lanes without outgoing connections (60 %) or interior lanes
//!   (where the vehicle parks at mid-lane); interior lanes are drawn in proportion to
//!   length times [`demand_weight`] of their road class, sources and sinks by the
//!   weight alone (service roads and parking aisles 0.1, living streets 0.3, others 1).
//! * **Routes**: Dijkstra by free-flow travel time over *lane groups* (a road in one
//!   direction; lane changes within a group are free), service roads and living streets
//!   costing [`route_penalty`] times more, so routes use them to reach or leave
//!   them, not as short cuts. Buses and trucks route without the turn-backs (connections
//!   turning back by more than [`TURN_BACK_RAD`] on a radius under
//!   [`TURN_BACK_MAX_RADIUS_M`]: hairpins no long body follows). At every lane end the
//!   connection into the next group that keeps the lane position is taken; a vehicle that
//!   cannot reach a lane with such a connection waits at the lane end for a gap and re-routes after 15 s. A vehicle kept
//!   at its hold point for 15 s by a stopped queue on its exit lane (or by a short lane
//!   beyond that never clears for it) re-routes by another way out of its lane with room.
//!   **Rerouting under traffic** every [`REROUTE_PERIOD_S`] (SUMO's rerouting device):
//!   route costs become the measured travel times of the lane groups (or the longest
//!   current dwell on one, if longer), and every vehicle that can still choose and whose
//!   way on costs [`REROUTE_CONGESTED`] more than at free flow takes the cheapest route to
//!   its destination if it saves [`REROUTE_GAIN`] of the rest.
//! * **Car following**: IDM (car a = 1.5 m/s², b = 2.0 m/s², T = 1.2 s, s0 = 2 m; buses and
//!   trucks a = 1.0, T = 1.5 s, slower desired speed), against the nearest vehicle ahead
//!   along the route (same piece, then the connection, then the next lanes, within
//!   150 m; vehicles whose rear still overhangs the lane count too). Speed limits ahead
//!   (lower limits, turns at 2 m/s² lateral) are anticipated, and so are **curves**: a
//!   lane's stretches whose curvature over [`CURVE_WINDOW_M`] (about the body's chord,
//!   whose turning is the recorded heading's) would take more than [`A_LAT_MPS2`] sideways
//!   at the limit ([`Net::curves`]) cap the desired speed while the body is in them and
//!   are braked for before; a connection's speed is its tightest bend's too (an S-curve
//!   turns little end to end). A hard kinematic clamp keeps every gap positive.
//! * **Junctions**: a vehicle enters a connection only with a **reservation**: requested by
//!   the first vehicle of the lane within braking distance + 20 m of its hold point, and
//!   granted when no vehicle holding a conflicting connection (paths closer than 3 m,
//!   merging or diverging included) has yet to clear its conflict zone, when the exit
//!   lane has room for it (no blocking the box), and, at give-way junctions, when no
//!   vehicle with priority (major road; right before left at uncontrolled junctions;
//!   opposing through traffic for left turns) would arrive before it clears the zone;
//!   a driver kept waiting there accepts shorter gaps after 20 s and, after 60 s, goes as
//!   soon as no vehicle with priority holds a conflicting reservation (impatience, as in
//!   SUMO).
//!   The exit lane must also hold the vehicle behind its queue compacted at its hold
//!   point (vehicles there and on their way, length + s0 each).
//!   All-way stops require a full stop first. So no two vehicles are in a conflict zone
//!   at once. Nor is a way granted whose path would bring the body within 0.2 m of a
//!   vehicle standing still (a lock no rule could undo). Connections of one junction
//!   whose paths keep 3 m apart but where a bus's or truck's body reaches the other's
//!   vehicle (cutting its corner into the mouth of the lane beside its own) conflict too
//!   when one of the two vehicles is long ([`Conflict::long_only`]).
//! * **Claims** (no starvation): a first vehicle kept [`CLAIM_AFTER_S`] at its hold point
//!   by vehicles it must cross or yield to (or by vehicles ahead on the short lanes it must
//!   cross, or by a queue on its exit or vehicles reserving room there: the streams merging
//!   into a queued lane take turns) *claims* the connections it needs; a vehicle
//!   that can still stop at its hold point (<= 4.5 m/s²) is granted nothing across a claim
//!   older than its own, and vehicles with priority that will stop for the claim are not
//!   waited for (nor one holding an overlap zone the claimant needs while it stands short
//!   of the zone waiting for the claimant, when its body is clear of the claimant's path);
//!   a claimant waiting for the very vehicle asking lets it go, and a claimant waiting for
//!   room on its exit binds only the vehicles that would take that room (entering a lane
//!   its claimed way enters: those crossing its path drain their queues meanwhile); a
//!   conflict of bodies binds a claim when either vehicle is long. Between two
//!   conflicting claims the older wins, so claims never wait for each other in a cycle.
//!   At a signal a first vehicle claims after [`CLAIM_GREEN_S`] of its green lost to
//!   others (green time, counted while it stands; not 30 s of standing, which a head that
//!   crept up during the red has not yet done when its short green is gone).
//!   A claimant at a signal whose green ran out before it got its way (a stream that had
//!   reserved the conflict before the green began held it all through a short protected
//!   left) claims the same connections again [`CLAIM_LEAD_S`] before its next green, so that
//!   stream's reservations have drained when the green begins.
//!   "Room" means room to stop with the rear clear of the zone; a lane too short
//!   to stop on clear of foreign paths ([`Net::clear_s`]) is reserved through: the
//!   connections beyond it are granted together (a signal beyond must stay green long
//!   enough; after [`SQUEEZE_AFTER_S`] of waiting, green is enough; after
//!   [`BLOCK_AFTER_S`], the chain ends at a short lane whose signal is red, and the vehicle
//!   waits at its stop line with the rear over the junction behind), and an unused chain is
//!   revoked only whole.
//! * **Conflicts between junctions**: conflict zones are computed between any two
//!   connections whose extended paths (lane tail from the hold point, the connection, 12 m
//!   of the exit lane, plus the chords cut by 8 and 12 m bodies on curves) come closer
//!   than 3 m, whichever junctions they belong to (close nodes and dual carriageways make
//!   junction boxes overlap); between junctions there is no priority, only first-come
//!   reservations. Hold points keep the front 2.4 m from every foreign path and body chord.
//! * **Overlap zones** ([`Net::zones`]): where a lane comes within 2.7 m of a lane of
//!   another road (not one or two connections along one path), or of a connection of a
//!   junction it does not touch, the two stretches form a zone with a major side (the
//!   piece of lower index) and a minor side. A vehicle takes the zone within braking
//!   distance + 20 m of it and keeps it until its rear has left; it gets it only when no
//!   vehicle of the other side holds it, when there is room to leave it (no slow leader
//!   within it), and, on the minor side, when no major-side vehicle is in the zone or
//!   would reach it before the minor vehicle clears it. A holder standing still before
//!   the zone lets it go. While a vehicle of one side waits for the zone, one of the other
//!   side takes it only with room to stop beyond it behind any leader, moving or not (a
//!   queue through the zone would starve that side for good). No spawning or lane changing within 30 m of a zone. Zones over a
//!   lane's hold point (starting at most 30 m before it), on the connections and lanes
//!   reserved through, and on the exit lane before the first stop clear of the connection
//!   are taken **together with the reservation** (all or nothing); a vehicle without it
//!   stops before them, so no vehicle waits for a junction inside a zone nor for a zone
//!   inside a junction.
//! * **Levels**: pieces on different vertical levels ([`swm_twin::Lane::level`]: bridges,
//!   tunnels) pass over each other: no conflicts, zones or hold points between them.
//!   Recorded poses are raised [`swm_twin::LEVEL_HEIGHT_M`] per level (connections ramp), so the
//!   collision metric tells them apart.
//! * **Sweeps** ([`Net::intrusions`]): where the bodies of vehicles driving through a
//!   connection (a bus cutting its corner) reach a vehicle standing near the end of another
//!   lane, vehicles of that lane wait at the farthest position clear of the sweep (not at
//!   the hold point) and stop there while another vehicle holds or claims the connection;
//!   the connection is not granted while a vehicle stands beyond that position (vehicles
//!   already in a junction excepted), unless that vehicle waits for the one asking and the
//!   asker's path does not touch its body.
//! * **Clearance guard**: whatever the rules above allow, a vehicle does not move (nor go on
//!   with a lane change's lateral move) in a step that would put its body into, or deeper
//!   into, another vehicle's box on its level, as that box stands at the step's start or
//!   where that vehicle, planned earlier in the step, will be ([`Wait::Clearance`]); its
//!   body is checked 0.2 m beyond the step's end and, where the path turns, at the end
//!   too; a lane
//!   change whose body in the target lane would touch another vehicle is not made.
//! * **External agents** ([`crate::ExternalAgent`], robots): a vehicle whose path within
//!   its braking distance + 6 m would reach one brakes to stop 1 m short of it, and the
//!   clearance guard treats it like a vehicle; a crossing it stands on is occupied; no
//!   vehicle spawns within its comfortable braking distance (3 m/s²) + 8 m of one.
//! * **Signals**: red: stop at the hold point (the stop line); amber: stop if possible at
//!   <= 3 m/s², else go when the stop line is reached before the amber ends, else brake
//!   hard; no turn on red. A vehicle that crossed the stop line with its way reserved
//!   clears the junction whatever the signal shows. Crossing a stop line on red emits
//!   [`SimEvent::RedLightViolation`].
//! * **Lane changes**: MOBIL (politeness 0.2, threshold 0.1 m/s², safe braking 3 m/s²;
//!   4 m/s² for mandatory changes towards the lane the route needs), with a smooth lateral
//!   move of 1.5 m/s during which the vehicle still blocks its old lane; none onto a lane
//!   within braking distance (3 m/s²) + 3 m of its stop line (its signal may differ), and
//!   none onto a lane into which a claimant (see claims) waits to turn when the lane's
//!   queue, with the changer in it, would leave the claimant too little room.
//! * **Motion**: ballistic integration along the path; the recorded pose is the kinematic
//!   bicycle pose with the rear trailing the front along the path it drove (through up to
//!   five pieces: chains of short links), heading from rear to front; during a lane change
//!   the rear lags the front's lateral move, never beyond where the change started.
//! * **Pedestrians**: a vehicle stops 2.5 m before a crossing on its lanes that the
//!   pedestrian simulator reports occupied, unless it cannot stop at 6 m/s²; it stops for
//!   a pedestrian on its course along its own lane ahead, passes one close by at 2.5 m/s,
//!   and beyond its lane stops for walking ones only.
//! * **Deadlocks**: every 5 s the wait-for graph (leader, reservation holder or claimant,
//!   priority vehicle, vehicle reserving room on the exit) of vehicles stopped > 60 s is
//!   searched for cycles; a cycle is broken by dropping a member's claims (it claims none
//!   for 30 s), else by revoking the unused overlap zones or the reservation of a vehicle
//!   that has not yet
//!   entered them (never of a vehicle past its hold point, which would then stand in the
//!   junction's mouth without a way through; the unused part of a partly used chain only
//!   when its holder stands at the hold point of its lane), or by letting one member (in
//!   turn, by id, at successive resolutions) ignore priority, claims and holders standing
//!   clear of its path for 10 s (a holder passed so, or passed because it waits for the
//!   passer, keeps still while the passer holds that connection, at most [`STAY_MAX_S`]:
//!   creeping on behind its own leader it would walk into the passer's path), emitting
//!   [`SimEvent::DeadlockResolved`]; a vehicle whose reservations or zones were revoked
//!   requests none for 5 s, so the others of the cycle go first. A reservation chain through a short lane is not
//!   granted while a vehicle on that lane has not yet got its own way out. Before that last
//!   resort, a **lock of bodies** (a member the clearance guard stops at another member's
//!   body, or one waiting for a conflict whose holder stands in its path) is untied by
//!   **backing away**: the member in the way (the one stopping a guard-stopped member
//!   first, then the one with most room) backs up to [`REVERSE_MAX_M`] at 1 m/s, out of a
//!   connection onto its approach lane but never behind the stop line, keeping 0.3 m from
//!   every body; its followers hold; the other member may pass holders standing clear of
//!   its path; the backer waits until the other is clear of its path (at most
//!   [`REVERSE_HOLD_S`]). Recorded speeds are negative while backing; no vehicle backs
//!   again within [`REVERSE_AGAIN_S`]. One resolution per cycle every 5 s. A cycle with a
//!   member stopped [`DEADLOCK_ESCALATE_S`] has outlived the gentle measures (a line of
//!   claimants behind a lock of bodies has each of its claims dropped in turn, and each
//!   returns 30 s later): it skips them, to backing away, else priority.
//! * **Dead ends of lanes**: a vehicle on a lane without the connection its route needs
//!   waits at the lane's hold point (at its end once past it) and, within 14 m of that
//!   (too late for a lane change), re-routes at once.
//! * **Spawning**: at source lanes (70 %) or random interior lanes, only where the gaps
//!   ahead and behind are safe and the new box (2 m longer at each end, 0.5 m wider at
//!   each side) touches no vehicle of any piece; despawning at sinks and destinations, with
//!   [`SimEvent::Arrived`].

mod net;
mod route;

pub use net::{
    A_LAT_MPS2, CONFLICT_DIST_M, CURVE_MIN_MPS, CURVE_WINDOW_M, Conflict, Curve, Gate, Net, TURN_BACK_MAX_RADIUS_M,
    TURN_BACK_RAD, demand_weight, is_long, route_penalty,
};

use swm_core::rng::CounterRng;
use swm_twin::Twin;

use crate::crossing::CrossingMap;
use crate::metrics::OrientedBox;
use crate::record::SimEvent;
use crate::signal::SignalController;
use crate::{AgentKind, DT_S, SignalState, TrajectoryRecord, VehicleBox};

/// Leader search horizon (m).
pub const LOOKAHEAD_M: f64 = 150.0;
/// The rng stream of spawning.
pub const SPAWN_STREAM: u64 = 0x7E41_0001;
const B_MAX_MPS2: f64 = 9.0;
const LANE_CHANGE_LAT_MPS: f64 = 1.5;
const NONE: u32 = u32::MAX;
/// A vehicle kept this long at its hold point by a stopped queue on its exit re-routes (s).
const REROUTE_BLOCKED_S: f64 = 15.0;
/// A vehicle kept this long at its hold point by the traffic it must cross or yield to
/// re-routes (s).
const REROUTE_STARVED_S: f64 = 90.0;
/// A vehicle whose reservations a deadlock resolution revoked requests none for this long (s).
const DEADLOCK_PAUSE_S: f64 = 5.0;
/// How long a deadlock resolution lets a vehicle ignore priority (s).
const IGNORE_YIELD_S: f64 = 10.0;
/// A cycle with a member stopped this long (s) has outlived the gentle resolutions (a
/// claim dropped, a reservation revoked), which the cycle undoes as the claim and the
/// reservation return: it is resolved by the bodies (backing away), else by priority.
pub const DEADLOCK_ESCALATE_S: f64 = 120.0;
/// Every this often (s) the route costs are updated from the traffic (per lane group, the
/// larger of the mean time vehicles took to drive it and the longest time a vehicle now on
/// it has spent there, plus the junction allowance, times the class penalty: see
/// [`route_penalty`]), and every vehicle that can still choose (on a lane, no reservation,
/// braking distance + 20 m before its hold point) and whose way on is congested
/// ([`REROUTE_CONGESTED`]) takes the cheapest route to its destination under them if that
/// saves [`REROUTE_GAIN`] of the rest of its own: SUMO's rerouting device, without a
/// teleport to fall back on.
pub const REROUTE_PERIOD_S: f64 = 30.0;
/// The share of a route's remaining cost a new route must save.
pub const REROUTE_GAIN: f64 = 0.15;
/// Only a vehicle whose remaining route costs this share more than at free flow looks
/// for another.
pub const REROUTE_CONGESTED: f64 = 0.3;
/// Weight of one departure in a lane group's mean travel time.
const TT_WEIGHT: f64 = 0.2;
/// A vehicle backing away to untie a lock of bodies backs at most this far (m)...
pub const REVERSE_MAX_M: f64 = 6.0;
/// ...at most this fast (m/s), speeding up and slowing down at [`REVERSE_ACCEL_MPS2`]...
const REVERSE_MPS: f64 = 1.0;
const REVERSE_ACCEL_MPS2: f64 = 1.0;
/// ...keeping this far from every other body (m), unless it does not come nearer...
const REVERSE_MARGIN_M: f64 = 0.3;
/// ...and waits, backed away, at most this long (s) for the vehicle it makes room for to
/// pass; it backs away again for a lock only this long (s) after it began the last time.
pub const REVERSE_HOLD_S: f64 = 30.0;
pub const REVERSE_AGAIN_S: f64 = 60.0;
/// A driver waiting to enter a priority junction starts to accept shorter gaps after this
/// long (s), and after [`IMPATIENT_RAMP_S`] more goes at the first moment no vehicle with
/// right of way holds a reservation across its path (SUMO's `impatience`). The first vehicle
/// of a lane with right of way reserves its way at braking distance + 20 m, so it stops
/// comfortably; one that becomes first closer than that (behind a leader that just
/// entered) may have to brake hard, as SUMO's impatient drivers make others do.
const IMPATIENT_AFTER_S: f64 = 20.0;
/// See [`IMPATIENT_AFTER_S`] (s).
const IMPATIENT_RAMP_S: f64 = 40.0;
/// A first vehicle kept this long at its hold point by vehicles it must cross or yield to
/// (or by vehicles ahead on the short lanes it must cross, or by a queue on its exit or
/// vehicles reserving room there)
/// *claims* the connections it needs (s): vehicles that can still stop get no new way across
/// them until it has gone, so a stream never starves a lane for good (conflicts of bodies
/// bind when either vehicle is long). The oldest claim wins between two conflicting ones, so
/// claims never wait for each other in a cycle.
pub const CLAIM_AFTER_S: f64 = 30.0;
/// A claimant at a signal whose green ran out before it got its way (the stream it crosses
/// held the conflict all through a short green) claims the same connections again this
/// long (s) before its next green, so the stream's reservations have drained when the green
/// begins.
pub const CLAIM_LEAD_S: f64 = 8.0;
/// At a signal, a first vehicle kept this long (s) of its green by vehicles it must cross
/// or yield to claims its way at once (green time, not [`CLAIM_AFTER_S`] of standing: a head
/// that crept up during the red and then lost a 12 s green to a merging stream would
/// otherwise wait a whole cycle, 100 s and more, with the queue behind it spilling back).
pub const CLAIM_GREEN_S: f64 = 4.0;
/// The longest a holder let pass by another (standing clear of its path) keeps still for it
/// (s; the rule is in the module docs, under deadlocks).
pub const STAY_MAX_S: f64 = 60.0;
/// A vehicle whose way crosses a lane too short to wait on, to a signal, enters only when
/// it can reach that signal on green; after waiting this long (s), whenever it is green.
pub const SQUEEZE_AFTER_S: f64 = 40.0;
/// After waiting this long (s), such a vehicle enters on its own green even while the signal
/// beyond the short lane is red, and waits at that lane's stop line with its rear over the
/// junction behind (its reservation keeps that clear): plans whose greens never overlap
/// would hold it for good.
pub const BLOCK_AFTER_S: f64 = 90.0;
/// A vehicle slower than this stands still (m/s): no way is granted through its body.
const STANDING_MPS: f64 = 0.3;
/// A vehicle that can stop at its hold point braking at most this hard honours claims
/// (m/s^2); one closer goes on.
const CLAIM_STOP_MPS2: f64 = 4.5;
/// A front this far past a signalled lane's hold point has crossed its stop line (m).
const STOP_LINE_TOL_M: f64 = 0.3;
/// A zone over a lane's hold point that starts at most this far before it is taken only
/// together with the junction beyond (m); longer overlaps are taken on their own.
const ATOMIC_ZONE_REACH_M: f64 = 30.0;

/// Driver and vehicle parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    pub length_m: f64,
    pub width_m: f64,
    pub a_mps2: f64,
    pub b_mps2: f64,
    pub headway_s: f64,
    pub s0_m: f64,
    /// Desired speed as a fraction of the limit.
    pub speed_factor: f64,
}

impl Params {
    pub fn of(kind: AgentKind) -> Params {
        match kind {
            AgentKind::Bus => Params {
                length_m: 12.0,
                width_m: 2.5,
                a_mps2: 1.0,
                b_mps2: 1.8,
                headway_s: 1.5,
                s0_m: 2.5,
                speed_factor: 0.85,
            },
            AgentKind::Truck => Params {
                length_m: 8.0,
                width_m: 2.4,
                a_mps2: 1.0,
                b_mps2: 1.8,
                headway_s: 1.5,
                s0_m: 2.5,
                speed_factor: 0.88,
            },
            _ => Params {
                length_m: 4.5,
                width_m: 1.8,
                a_mps2: 1.5,
                b_mps2: 2.0,
                headway_s: 1.2,
                s0_m: 2.0,
                speed_factor: 0.95,
            },
        }
    }
}

/// IDM acceleration towards a leader `gap_m` ahead moving `dv_mps` slower.
#[inline]
pub fn idm_accel(p: &Params, v_mps: f64, v0_mps: f64, gap_m: f64, dv_mps: f64) -> f64 {
    let free = 1.0 - (v_mps / v0_mps.max(0.1)).powi(4);
    let s_star = p.s0_m + (v_mps * p.headway_s + v_mps * dv_mps / (2.0 * (p.a_mps2 * p.b_mps2).sqrt())).max(0.0);
    let g = gap_m.max(0.05);
    p.a_mps2 * (free - (s_star / g) * (s_star / g))
}

#[inline]
fn idm_free(p: &Params, v_mps: f64, v0_mps: f64) -> f64 {
    p.a_mps2 * (1.0 - (v_mps / v0_mps.max(0.1)).powi(4))
}

/// One vehicle.
#[derive(Clone, Debug)]
pub struct Vehicle {
    pub id: u64,
    pub kind: AgentKind,
    pub p: Params,
    /// Piece: a lane index, or `n_lanes + connection`.
    pub piece: u32,
    /// Front bumper along the piece (m).
    pub s_m: f64,
    pub v_mps: f64,
    pub a_mps2: f64,
    prev_piece: u32,
    /// The pieces before `prev_piece`, latest first (the rear of a long vehicle trails
    /// through chains of short pieces).
    history: [u32; 3],
    /// Lateral offset from the lane centre (m, + left), decaying after a lane change.
    lat_m: f64,
    /// The offset a lane change started from (m): the rear's lag never exceeds it.
    lat0_m: f64,
    /// The lane left by a lane change still in progress.
    ghost_lane: u32,
    route: Vec<u32>,
    route_idx: usize,
    /// Counts the vehicle's route assignments ([`Vehicle::set_route`]; keys [`Walk`]).
    route_gen: u32,
    /// Park at this distance along a lane of the last group (`None`: drive to its end).
    dest_s_m: Option<f64>,
    /// Reservations held: (connection, odometer when the front reaches its start).
    held: Vec<(u32, f64)>,
    /// Overlap zones held: (zone, odometer when the front reaches it, odometer when the
    /// rear has cleared it).
    zheld: Vec<(u32, f64, f64)>,
    amber_go: bool,
    stopped_at_line: bool,
    /// Until this time (s) the vehicle ignores priority (it need not yield to vehicles with
    /// right of way): a deadlock resolution's last resort.
    ignore_yield_until_s: f64,
    /// No new reservations before this time (s): set when a deadlock resolution revoked
    /// this vehicle's, so the others of the cycle go first.
    no_grant_until_s: f64,
    /// Connections this vehicle claims (see [`CLAIM_AFTER_S`]).
    claimed: Vec<u32>,
    /// The connections it last claimed at a signal, and the lane it claimed them from, kept
    /// through the red until it leaves that lane (see [`CLAIM_LEAD_S`]).
    starved_chain: Vec<u32>,
    starved_lane: u32,
    /// Green time (s) this vehicle has stood first at its hold point, kept by others (see
    /// [`CLAIM_GREEN_S`]); reset once it moves.
    green_kept_s: f64,
    /// No claims before this time (s): set when a deadlock resolution dropped this
    /// vehicle's.
    no_claim_until_s: f64,
    /// The clearance guard stopped this vehicle: its lateral move waits too.
    hold_lat: bool,
    /// A deadlock resolution's backing away: the vehicle it makes room for (`NONE` when
    /// not), until when (s), how far it may still back (m), and its reversing speed (m/s,
    /// positive backwards).
    reverse_for: u32,
    reverse_until_s: f64,
    reverse_left_m: f64,
    reverse_mps: f64,
    /// The distance it backs in this step (m; set by the plan, applied by the motion).
    reverse_step_m: f64,
    /// When its last backing away began (s; see [`REVERSE_AGAIN_S`]).
    reverse_began_s: f64,
    /// A holder standing clear of another's path that the other was let pass stays where it
    /// is while the other still holds that connection (at most [`STAY_MAX_S`]): the passer's
    /// id and connection, and until when (s).
    stay_for: u32,
    stay_for_id: u64,
    stay_conn: u32,
    stay_until_s: f64,
    pub odo_m: f64,
    spawn_time_s: f64,
    /// When it entered its lane (s; NaN on the lane it spawned on, part of which it skipped).
    lane_entered_s: f64,
    /// The live cost of the rest of its route when it last looked for another (s): it
    /// looks again only once that has grown by [`REROUTE_GAIN`].
    route_checked_s: f64,
    pub stopped_s: f64,
    wait_end_s: f64,
    lc_cooldown_s: f64,
    blocked_by: u32,
    /// Why the vehicle waits (diagnostics and deadlock resolution).
    pub why: Wait,
    /// Speed limit on hard advance this step (m).
    max_adv_m: f64,
    /// Acceleration from obstacles only (stops, limits), for lane-change evaluation.
    a_obst: f64,
    pub heading_rad: f64,
    alive: bool,
}

impl Vehicle {
    /// Gives the vehicle a new route, from its first group (the only way routes change:
    /// it bumps `route_gen`, which keys the kept [`Walk`]s).
    fn set_route(&mut self, route: Vec<u32>) {
        self.route = route;
        self.route_idx = 0;
        self.route_gen = self.route_gen.wrapping_add(1);
    }
}

/// What a vehicle waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Wait {
    #[default]
    None,
    Leader,
    Red,
    Conflict,
    Priority,
    ExitRoom,
    ExitReserved,
    NotFirst,
    NoConnection,
    StopSign,
    /// An overlap zone with a lane of another road.
    Zone,
    /// The clearance guard: the next step would put the body into another vehicle's.
    Clearance,
    /// A pedestrian in the vehicle's path (on a shared street, or off a crossing).
    Pedestrian,
    /// Backing away (or waiting, backed away) to untie a lock of bodies: a deadlock
    /// resolution's physical last step.
    Reversing,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    s: f64,
    slot: u32,
    ghost: bool,
    /// The vehicle's length and speed, as they stand while the lists are valid (speeds
    /// change only in the motion phase, after which the lists are rebuilt).
    len_m: f64,
    v_mps: f64,
}

/// A vehicle as [`VehicleSim::leader`] sees it from behind: its front's distance along the
/// piece and its length (m; the rear overhangs the piece's start while `s_m < len_m`), its
/// speed and slot.
#[derive(Clone, Copy, Debug)]
struct Rear {
    s_m: f64,
    len_m: f64,
    v_mps: f64,
    slot: u32,
}

impl Rear {
    const NONE: Rear = Rear { s_m: 0.0, len_m: 0.0, v_mps: 0.0, slot: NONE };

    fn of(e: &Entry) -> Rear {
        Rear { s_m: e.s, len_m: e.len_m, v_mps: e.v_mps, slot: e.slot }
    }

    fn rear_m(&self) -> f64 {
        self.s_m - self.len_m
    }
}

/// The lists as the planning phase reads them, flat (see [`VehicleSim::index_lists`]): one
/// array read per piece instead of a search in a list on the heap.
#[derive(Clone, Default)]
struct ListIndex {
    /// By slot: the entry after the vehicle's own in its piece's list.
    ahead: Vec<Rear>,
    /// By piece: its first two entries.
    heads: Vec<[Rear; 2]>,
    /// By lane: the farthest-back rear overhanging it from its outgoing connections (the
    /// first vehicle on each), the first such in `lane_out` order on a tie.
    overhang: Vec<Rear>,
    /// Pieces and lanes whose `heads` and `overhang` were set (reset at the next index).
    set: Vec<u32>,
    /// By piece: [`HAS_HEAD`] when `heads` holds a vehicle, [`HAS_OVERHANG`] when
    /// `overhang` does. One byte per piece, so the walk along a route, which mostly meets
    /// empty pieces, reads a dense array instead of missing the cache on `heads`.
    occupied: Vec<u8>,
}

/// [`ListIndex::occupied`]: the piece's `heads` hold a vehicle.
const HAS_HEAD: u8 = 1;
/// [`ListIndex::occupied`]: the lane's `overhang` holds a vehicle.
const HAS_OVERHANG: u8 = 2;

/// Pieces a leader search walks at most beyond the vehicle's own.
const WALK_HOPS: usize = 9;

/// The pieces along a vehicle's route beyond its own, as [`VehicleSim::planned_conn`] and
/// the connections' exit lanes give them, with their lengths: what the leader search and
/// the look-ahead read every step, and which changes only when the vehicle changes piece or
/// route. Kept per slot, keyed by what it was computed for.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Walk {
    id: u64,
    route_gen: u32,
    piece: u32,
    route_idx: usize,
    /// How many of `next` hold pieces; fewer than [`WALK_HOPS`] where the route ends.
    n: usize,
    next: [u32; WALK_HOPS],
    len_m: [f64; WALK_HOPS],
}

impl Walk {
    const NONE: Walk = Walk {
        id: u64::MAX,
        route_gen: 0,
        piece: NONE,
        route_idx: 0,
        n: 0,
        next: [NONE; WALK_HOPS],
        len_m: [0.0; WALK_HOPS],
    };

    fn holds(&self, v: &Vehicle) -> bool {
        self.id == v.id && self.route_gen == v.route_gen && self.piece == v.piece && self.route_idx == v.route_idx
    }

    /// The piece after the vehicle's own one `hops` on, and its length.
    fn hop(&self, hops: usize) -> Option<(u32, f64)> {
        (hops < self.n).then(|| (self.next[hops], self.len_m[hops]))
    }
}

/// The vehicle simulator.
#[derive(Clone)]
pub struct VehicleSim {
    pub net: Net,
    pub vehicles: Vec<Vehicle>,
    free_slots: Vec<u32>,
    /// By slot: the vehicle's [`Walk`] (refreshed before planning).
    walks: Vec<Walk>,
    lists: Vec<Vec<Entry>>,
    touched: Vec<u32>,
    index: ListIndex,
    occupants: Vec<Vec<(u32, f64)>>,
    /// The claim on each connection: (slot, time its wait began (s), id), slot [`NONE`]
    /// when unclaimed (see [`CLAIM_AFTER_S`]).
    claims: Vec<(u32, f64, u64)>,
    /// Holders of each overlap zone: (slot, side).
    zone_occ: Vec<Vec<(u32, u8)>>,
    sink_group: Vec<bool>,
    rng: CounterRng,
    next_id: u64,
    pub target: u32,
    alive_count: u32,
    /// Vehicle updates performed (for throughput measurements).
    pub updates: u64,
    /// Events of the initial placement, handed out with the first step.
    pending_events: Vec<SimEvent>,
    /// Boxes (and heights) of the vehicles at the start of the step, by slot, and the slots
    /// by grid cell: the clearance guard's view.
    guard_boxes: Vec<(GuardBox, f64)>,
    /// [`guard_entry`] of every vehicle, sorted.
    guard_grid: Vec<u64>,
    /// The same on the coarser grid of [`VehicleSim::isolated`].
    near_grid: Vec<u64>,
    /// Scratch of [`regrid`]: the entries by slot, and which were kept.
    guard_keys: Vec<u64>,
    near_keys: Vec<u64>,
    regrid_seen: Vec<bool>,
    /// The largest box radius this step (m).
    max_radius_m: f64,
    /// The pedestrians of this step by [`PED_CELL_M`] cell ([`guard_entry`] with their index).
    ped_grid: Vec<u64>,
    /// Where the vehicles planned so far this step will be (the guard checks both).
    guard_next: Vec<Option<GuardBox>>,
    /// Simulation time of the current step (s).
    now_s: f64,
    /// Every slot's pose as of the last [`VehicleSim::update_headings`].
    poses: Vec<PoseCache>,
    /// Agents driven from outside: their boxes, heights and speeds.
    external: Vec<(GuardBox, f64, f64)>,
    /// Per lane group: the mean time vehicles took to drive it (s, exponentially weighted
    /// over departures; free-flow time before any), and the live route cost of entering it
    /// (s; see [`REROUTE_PERIOD_S`]).
    group_tt_s: Vec<f64>,
    route_cost_s: Vec<f64>,
}

/// Cell of the clearance guard's grid (m): at least the largest distance between the
/// centres of two touching boxes (two 12 x 2.5 m buses: 12.3 m), so neighbours are within
/// one cell.
const GUARD_CELL_M: f64 = 12.5;
/// The clearance guard looks this far beyond the step's advance (m).
const GUARD_MARGIN_M: f64 = 0.2;
/// Cell of the pedestrians' grid (m).
const PED_CELL_M: f64 = 16.0;
/// A vehicle looks this far beyond its braking distance for pedestrians in its path (m).
const PED_LOOK_M: f64 = 8.0;
/// A vehicle stops for a pedestrian closer to its path's centre line than its own half
/// width plus this (m: a pedestrian's radius and a margin).
const PED_PATH_MARGIN_M: f64 = 0.4;
/// A vehicle passes a pedestrian closer than its half width plus this (m) at no more than
/// [`PED_PASS_MPS`].
const PED_PASS_MARGIN_M: f64 = 1.5;
/// A pedestrian faster than this walks (m/s; see [`VehicleSim::pedestrian_ahead`]).
const PED_WALKING_MPS: f64 = 0.5;
/// Speed for passing a pedestrian close by (m/s).
const PED_PASS_MPS: f64 = 2.5;
/// Step of the path a vehicle checks for pedestrians (m).
const PED_PATH_STEP_M: f64 = 2.0;
/// Where a vehicle stops short of a pedestrian in its path (m from its front).
const PED_GAP_M: f64 = 1.5;
/// Cell of the coarse grid that finds vehicles with no other near (m; see
/// [`VehicleSim::isolated`]).
const NEAR_CELL_M: f64 = 25.0;
/// How much closer than their radii (plus the step's advance) two boxes must be for the
/// clearance guard to look (m): covers the other's advance in one step (under 3 m at
/// motorway speeds) and the jumps of a body's pose across the joints of pieces, with room
/// to spare.
const NEAR_SLACK_M: f64 = 7.0;

/// The cell of `p` in a grid of `cell_m` squares.
fn grid_cell(p: [f64; 2], cell_m: f64) -> (i64, i64) {
    (floor_i64(p[0] / cell_m), floor_i64(p[1] / cell_m))
}

/// `x.floor() as i64` without the call into libm that `floor` is on baseline x86-64 (no
/// SSE4.1 `roundsd`): the same for every `x` (saturating, 0 for NaN).
fn floor_i64(x: f64) -> i64 {
    let t = x as i64;
    t.saturating_sub(i64::from((t as f64) > x))
}

/// A vehicle's entry in the guard grid: its cell and slot packed so that entries sort by
/// cell column, then row, then slot (cells of one column are consecutive, in `y` order).
fn guard_entry(c: (i64, i64), slot: u32) -> u64 {
    const OFFSET: i64 = 1 << 19;
    pack_entry(c.0 + OFFSET, c.1 + OFFSET, slot)
}

/// [`guard_entry`] from offset (non-negative) cell coordinates, clamped into 20 bits each.
fn pack_entry(col: i64, row: i64, slot: u32) -> u64 {
    debug_assert!(slot <= SLOT_MASK, "grid entries hold 24-bit indices");
    let col = col.clamp(0, (1 << 20) - 1) as u64;
    let row = row.clamp(0, (1 << 20) - 1) as u64;
    (col << 44) | (row << 24) | u64::from(slot & SLOT_MASK)
}

/// Re-keys a grid of [`guard_entry`]s for this step and sorts it: `keys` holds each slot's
/// new entry (`u64::MAX` for none). Vehicles move little in a step, so the last step's
/// order is kept and insertion-sorted (about linear), with a full sort when that would be
/// slow (the first step, many spawns). The result equals sorting `keys` (entries are
/// unique: they hold the slot).
fn regrid(grid: &mut Vec<u64>, keys: &[u64], seen: &mut Vec<bool>) {
    seen.clear();
    seen.resize(keys.len(), false);
    let mut w = 0;
    for r in 0..grid.len() {
        let slot = (grid[r] as u32 & SLOT_MASK) as usize;
        if slot < keys.len() && keys[slot] != u64::MAX && !seen[slot] {
            seen[slot] = true;
            grid[w] = keys[slot];
            w += 1;
        }
    }
    grid.truncate(w);
    grid.extend(keys.iter().zip(seen.iter()).filter(|(k, s)| **k != u64::MAX && !**s).map(|(k, _)| *k));
    let budget = 16 * grid.len() + 64;
    let mut moves = 0;
    for i in 1..grid.len() {
        let x = grid[i];
        let mut j = i;
        while j > 0 && grid[j - 1] > x {
            grid[j] = grid[j - 1];
            j -= 1;
        }
        grid[j] = x;
        moves += i - j;
        if moves > budget {
            grid.sort_unstable();
            return;
        }
    }
}

/// The slot bits of a grid entry.
const SLOT_MASK: u32 = 0xff_ffff;

/// The guard's box: the same rectangle as [`OrientedBox`] (centre, axis, half extents)
/// with its axis as a unit vector, for quick separating-axis tests.
#[derive(Clone, Copy, Debug)]
struct GuardBox {
    c: [f64; 2],
    u: [f64; 2],
    half: [f64; 2],
    radius: f64,
}

impl GuardBox {
    const EMPTY: GuardBox = GuardBox { c: [0.0; 2], u: [1.0, 0.0], half: [0.0; 2], radius: 0.0 };

    /// Overlap depth (m; negative: apart), as [`OrientedBox::overlap_depth_m`] computes it.
    fn depth(&self, o: &GuardBox) -> f64 {
        let d = [o.c[0] - self.c[0], o.c[1] - self.c[1]];
        if d[0] * d[0] + d[1] * d[1] >= (self.radius + o.radius).powi(2) {
            return -1.0;
        }
        let proj = |b: &GuardBox, a: [f64; 2]| {
            let (pu, pv) = (b.u[0] * a[0] + b.u[1] * a[1], -b.u[1] * a[0] + b.u[0] * a[1]);
            b.half[0] * pu.abs() + b.half[1] * pv.abs()
        };
        let mut depth = f64::INFINITY;
        for b in [self, o] {
            for a in [b.u, [-b.u[1], b.u[0]]] {
                let dist = (d[0] * a[0] + d[1] * a[1]).abs();
                depth = depth.min(proj(self, a) + proj(o, a) - dist);
            }
        }
        depth
    }
}

/// Distance from `p` to the segment `ab`, and where along it (0 at `a`, 1 at `b`) the
/// nearest point lies.
fn segment_distance(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> (f64, f64) {
    let ab = [b[0] - a[0], b[1] - a[1]];
    let l2 = ab[0] * ab[0] + ab[1] * ab[1];
    let t = if l2 > 1e-12 { (((p[0] - a[0]) * ab[0] + (p[1] - a[1]) * ab[1]) / l2).clamp(0.0, 1.0) } else { 0.0 };
    let q = [a[0] + ab[0] * t, a[1] + ab[1] * t];
    ((p[0] - q[0]).hypot(p[1] - q[1]), t)
}

/// A lane change's lateral offset one step later (it closes at [`LANE_CHANGE_LAT_MPS`]).
fn lat_after_step(lat_m: f64) -> f64 {
    let step = LANE_CHANGE_LAT_MPS * DT_S;
    if lat_m.abs() <= step { 0.0 } else { lat_m - step * lat_m.signum() }
}

/// The rear's lateral offset during a lane change with the front `lat_m` off the lane's
/// centre: it lags (15 % more offset) but never beyond where the change started.
fn rear_lat_m(v: &Vehicle, lat_m: f64) -> f64 {
    lat_m.signum() * (lat_m.abs() * 1.15).min(v.lat0_m.abs().max(lat_m.abs()))
}

/// The recorded box of a body with front `f` and rear `r`.
fn body_box_of(f: [f64; 3], r: [f64; 3], p: &Params, fallback_heading: f64) -> GuardBox {
    let (dx, dy) = (f[0] - r[0], f[1] - r[1]);
    let n2 = dx * dx + dy * dy;
    let u = if n2 > 1e-6 {
        let n = n2.sqrt();
        [dx / n, dy / n]
    } else {
        [fallback_heading.cos(), fallback_heading.sin()]
    };
    let half = [p.length_m / 2.0, p.width_m / 2.0];
    GuardBox {
        c: [(f[0] + r[0]) / 2.0, (f[1] + r[1]) / 2.0],
        u,
        half,
        radius: (half[0] * half[0] + half[1] * half[1]).sqrt(),
    }
}

/// Whether a body's box turns between `a` and `b` (on a straight path the boxes in between
/// are translations, and a guard check at both ends covers them).
fn turns(a: &GuardBox, b: &GuardBox) -> bool {
    a.u[0] * b.u[0] + a.u[1] * b.u[1] < 1.0 - 1e-7
}

/// Centre and heading (rear to front; `fallback_rad` when they coincide) of a body.
fn center_heading_of(f: [f64; 3], r: [f64; 3], fallback_rad: f64) -> ([f64; 3], f64) {
    let c = [(f[0] + r[0]) / 2.0, (f[1] + r[1]) / 2.0, (f[2] + r[2]) / 2.0];
    let (dx, dy) = (f[0] - r[0], f[1] - r[1]);
    (c, if dx * dx + dy * dy > 1e-6 { libm::atan2(dy, dx) } else { fallback_rad })
}

/// A vehicle's front and rear points, its centre and heading, and the state they were
/// computed for.
#[derive(Clone, Copy, Debug)]
struct PoseCache {
    piece: u32,
    prev: u32,
    s_m: f64,
    lat_m: f64,
    f: [f64; 3],
    r: [f64; 3],
    center: [f64; 3],
    heading_rad: f64,
}

impl PoseCache {
    const NONE: PoseCache = PoseCache {
        piece: u32::MAX,
        prev: u32::MAX,
        s_m: f64::NAN,
        lat_m: 0.0,
        f: [0.0; 3],
        r: [0.0; 3],
        center: [0.0; 3],
        heading_rad: 0.0,
    };

    fn holds(&self, v: &Vehicle) -> bool {
        self.piece == v.piece && self.prev == v.prev_piece && self.s_m == v.s_m && self.lat_m == v.lat_m
    }
}

/// What the vehicles need from the world in one step.
pub struct StepCtx<'a> {
    pub twin: &'a Twin,
    pub signals: &'a SignalController,
    pub step: u32,
    pub time_s: f64,
    pub occupied: &'a dyn Fn(u32) -> bool,
    /// Where the pedestrians stand and how fast they walk (`[x, y, z, speed]`, m, m/s):
    /// vehicles stop for those in their path.
    pub pedestrians: &'a [[f64; 4]],
}

impl VehicleSim {
    /// A vehicle simulator keeping about `target` vehicles; the first ones are placed on
    /// random interior lanes at once.
    pub fn new(twin: &Twin, crossings: &CrossingMap, seed: u64, target: u32) -> VehicleSim {
        let net = Net::new(twin, crossings);
        let nl_count = net.n_lanes;
        let npieces = net.len.len();
        let nc = twin.lane_connections.len();
        let net_zones = net.zones.len();
        let sink_group: Vec<bool> =
            (0..net.groups.len()).map(|g| net.groups[g].iter().all(|l| net.lane_out[*l as usize].is_empty())).collect();
        let mut sim = VehicleSim {
            net,
            vehicles: Vec::new(),
            free_slots: Vec::new(),
            walks: Vec::new(),
            lists: vec![Vec::new(); npieces],
            touched: Vec::new(),
            index: ListIndex {
                ahead: Vec::new(),
                heads: vec![[Rear::NONE; 2]; npieces],
                occupied: vec![0; npieces],
                overhang: vec![Rear::NONE; nl_count],
                set: Vec::new(),
            },
            occupants: vec![Vec::new(); nc],
            claims: vec![(NONE, 0.0, 0); nc],
            zone_occ: vec![Vec::new(); net_zones],
            sink_group,
            rng: CounterRng::new(seed, SPAWN_STREAM),
            next_id: 1,
            target,
            alive_count: 0,
            updates: 0,
            pending_events: Vec::new(),
            guard_boxes: Vec::new(),
            guard_grid: Vec::new(),
            near_grid: Vec::new(),
            guard_keys: Vec::new(),
            near_keys: Vec::new(),
            regrid_seen: Vec::new(),
            max_radius_m: 0.0,
            ped_grid: Vec::new(),
            guard_next: Vec::new(),
            now_s: 0.0,
            poses: Vec::new(),
            external: Vec::new(),
            group_tt_s: Vec::new(),
            route_cost_s: Vec::new(),
        };
        sim.route_cost_s = sim.net.group_cost_s.clone();
        sim.group_tt_s =
            sim.net.groups.iter().map(|m| sim.net.len[m[0] as usize] / sim.net.vmax[m[0] as usize]).collect();
        let mut events = Vec::new();
        let attempts = target as usize * 4;
        for _ in 0..attempts {
            if sim.alive_count >= target {
                break;
            }
            sim.try_spawn(twin, 0, 0.0, false, &mut events);
        }
        sim.pending_events = events;
        sim
    }

    /// One line per vehicle stopped longer than `min_stopped_s`: where it is and what it
    /// waits for (diagnostics).
    pub fn stuck_report(&self, min_stopped_s: f64) -> Vec<String> {
        let nl = self.net.n_lanes as u32;
        let mut out = Vec::new();
        for v in self.vehicles.iter().filter(|v| v.alive && v.stopped_s > min_stopped_s) {
            let piece = if v.piece < nl { format!("lane {}", v.piece) } else { format!("conn {}", v.piece - nl) };
            let by = if v.blocked_by == NONE { 0 } else { self.vehicles[v.blocked_by as usize].id };
            out.push(format!(
                "veh {} {:?} stopped {:.0}s on {piece} s {:.1}/{:.1} hold {:.1} gate {:?} why {:?} by {} held {:?} \
                 next {:?} route {:?}@{}",
                v.id,
                v.kind,
                v.stopped_s,
                v.s_m,
                self.net.len[v.piece as usize],
                if v.piece < nl { self.net.hold_s[v.piece as usize] } else { 0.0 },
                if v.piece < nl { Some(self.net.gate[v.piece as usize]) } else { None },
                v.why,
                by,
                v.held.iter().map(|h| (h.0, self.net.conn_from[h.0 as usize], h.1 - v.odo_m)).collect::<Vec<_>>(),
                if v.piece < nl {
                    v.route.get(v.route_idx + 1).map(|&g| {
                        (
                            g,
                            self.net.lane_out[v.piece as usize]
                                .iter()
                                .copied()
                                .filter(|&c| self.net.group_of[self.net.conn_to[c as usize] as usize] == g)
                                .collect::<Vec<_>>(),
                        )
                    })
                } else {
                    None
                },
                v.route,
                v.route_idx
            ));
            // The wait-for chain behind it.
            let mut chain = String::new();
            let mut cur = v.blocked_by;
            let mut seen = 0;
            while cur != NONE && seen < 8 {
                let c = &self.vehicles[cur as usize];
                let piece = if c.piece < nl { format!("lane {}", c.piece) } else { format!("conn {}", c.piece - nl) };
                chain.push_str(&format!(
                    " -> {} ({piece} s {:.1} v {:.1} stopped {:.0}s why {:?})",
                    c.id, c.s_m, c.v_mps, c.stopped_s, c.why
                ));
                cur = c.blocked_by;
                seen += 1;
            }
            if !chain.is_empty() {
                out.push(format!("    chain{chain}"));
            }
        }
        out
    }

    /// Diagnostics: for every vehicle stopped longer than `min_stopped_s`, the head of its
    /// wait-for chain (the first vehicle waiting for something other than a leader, or the
    /// last one reached; with `follow_all`, the end of the whole chain): `(head id, head's
    /// reason, head's gate, head stopped s, cycle)`.
    pub fn wait_heads(&self, min_stopped_s: f64, follow_all: bool) -> Vec<(u64, Wait, Option<Gate>, f64, bool)> {
        let nl = self.net.n_lanes as u32;
        let mut out = Vec::new();
        for (slot, v) in self.vehicles.iter().enumerate() {
            if !v.alive || v.stopped_s <= min_stopped_s {
                continue;
            }
            let mut seen = vec![slot as u32];
            let mut cur = slot as u32;
            let mut cycle = false;
            loop {
                let c = &self.vehicles[cur as usize];
                if c.blocked_by == NONE || !(follow_all || c.why == Wait::Leader) {
                    break;
                }
                if seen.contains(&c.blocked_by) {
                    cycle = true;
                    break;
                }
                seen.push(c.blocked_by);
                cur = c.blocked_by;
            }
            let h = &self.vehicles[cur as usize];
            let gate = (h.piece < nl).then(|| self.net.gate[h.piece as usize]);
            out.push((h.id, h.why, gate, h.stopped_s, cycle));
        }
        out
    }

    /// Draws a destination lane: a sink (a lane leaving the district) or any lane, by
    /// demand weight.
    fn draw_lane(&mut self, to_sink: bool) -> Option<u32> {
        let u = self.rng.next_f64();
        if to_sink {
            Net::pick_weighted(&self.net.sink_cdf, u).map(|i| self.net.sinks[i])
        } else {
            Net::pick_weighted(&self.net.lane_cdf, u).map(|i| i as u32)
        }
    }

    /// Whether slot `slot` holds a live vehicle.
    pub fn alive(&self, slot: usize) -> bool {
        self.vehicles.get(slot).is_some_and(|v| v.alive)
    }

    /// The wait-for chain from vehicle slot `slot` (diagnostics): the slots each vehicle
    /// waits for, in order, ending at the first vehicle that waits for no one or at the
    /// first repeated slot.
    pub fn wait_chain(&self, slot: usize) -> Vec<usize> {
        let mut chain = vec![slot];
        let mut cur = slot;
        while self.vehicles[cur].blocked_by != NONE {
            let b = self.vehicles[cur].blocked_by as usize;
            if chain.contains(&b) {
                chain.push(b);
                break;
            }
            chain.push(b);
            cur = b;
        }
        chain
    }

    /// Forks: a new random stream from `seed`; every vehicle draws a new desired speed
    /// (its driver's latent parameter, as at spawn), and every vehicle that can still
    /// choose (on a lane, no reservation, at least braking distance + 20 m before its hold
    /// point) draws a new destination, as at spawn. Vehicles already committed to their
    /// next connection keep their route.
    /// Updates the route costs from the traffic and re-routes the vehicles that can still
    /// choose (see [`REROUTE_PERIOD_S`]).
    fn reroute_under_traffic(&mut self, time_s: f64) {
        let nl = self.net.n_lanes as u32;
        let mut dwell = vec![0.0f64; self.net.groups.len()];
        for v in self.vehicles.iter().filter(|v| v.alive && v.piece < nl) {
            if v.lane_entered_s.is_finite() {
                let g = self.net.group_of[v.piece as usize] as usize;
                dwell[g] = dwell[g].max(time_s - v.lane_entered_s);
            }
        }
        for (g, m) in self.net.groups.iter().enumerate() {
            let l = m[0] as usize;
            let free = self.net.group_cost_s[g];
            let penalty = free / (self.net.len[l] / self.net.vmax[l] + 3.0);
            let seen = (self.group_tt_s[g].max(dwell[g]) + 3.0) * penalty;
            self.route_cost_s[g] = free.max(seen);
        }
        let cost = |r: &[u32]| -> f64 { r.iter().skip(1).map(|&g| self.route_cost_s[g as usize]).sum() };
        let mut changes: Vec<(usize, Vec<u32>)> = Vec::new();
        let mut checked: Vec<(usize, f64)> = Vec::new();
        for (slot, v) in self.vehicles.iter().enumerate() {
            if !v.alive || v.piece >= nl || !v.held.is_empty() || v.route_idx + 2 >= v.route.len() {
                continue;
            }
            let lane = v.piece;
            let brake_m = v.v_mps * v.v_mps / (2.0 * v.p.b_mps2) + 20.0;
            if v.s_m + brake_m > self.net.hold_s[lane as usize] {
                continue;
            }
            let here = &v.route[v.route_idx..];
            // Only a vehicle whose way on is congested, and more so than when it last
            // looked, looks for another.
            let free: f64 = here.iter().skip(1).map(|&g| self.net.group_cost_s[g as usize]).sum();
            let now = cost(here);
            if now < (1.0 + REROUTE_CONGESTED) * free || now < (1.0 + REROUTE_GAIN) * v.route_checked_s {
                continue;
            }
            checked.push((slot, now));
            let dest = *here.last().unwrap_or(&here[0]);
            let long = is_long(self.vehicles[slot].p.length_m);
            let Some(new) = self.net.route(here[0], Some(dest), &self.sink_group, &self.route_cost_s, long) else {
                continue;
            };
            if new.last() == Some(&dest) && new != here && cost(&new) < (1.0 - REROUTE_GAIN) * cost(here) {
                changes.push((slot, new));
            }
        }
        for (slot, c) in checked {
            self.vehicles[slot].route_checked_s = c;
        }
        for (slot, new) in changes {
            let v = &mut self.vehicles[slot];
            v.route_checked_s = cost(&new);
            v.set_route(new);
            v.wait_end_s = 0.0;
        }
    }

    pub(crate) fn resample_intents(&mut self, seed: u64) {
        self.rng = CounterRng::new(seed, SPAWN_STREAM);
        let nl = self.net.n_lanes as u32;
        for slot in 0..self.vehicles.len() {
            if !self.vehicles[slot].alive {
                continue;
            }
            let kind = self.vehicles[slot].kind;
            let f = (Params::of(kind).speed_factor * self.rng.range_f64(0.9, 1.05)).min(1.0);
            self.vehicles[slot].p.speed_factor = f;
            let v = &self.vehicles[slot];
            if v.piece >= nl || !v.held.is_empty() {
                continue;
            }
            let lane = v.piece;
            let brake_m = v.v_mps * v.v_mps / (2.0 * v.p.b_mps2) + 20.0;
            if v.s_m + brake_m > self.net.hold_s[lane as usize] {
                continue;
            }
            let to_sink = self.rng.chance(0.6) && !self.net.sinks.is_empty();
            let Some(dest_lane) = self.draw_lane(to_sink) else { continue };
            let g0 = self.net.group_of[lane as usize];
            let gd = self.net.group_of[dest_lane as usize];
            if gd == g0 {
                continue;
            }
            let long = is_long(self.vehicles[slot].p.length_m);
            let Some(route) = self.net.route(g0, Some(gd), &self.sink_group, &self.route_cost_s, long) else {
                continue;
            };
            if route.len() < 2 {
                continue;
            }
            let dest_s_m = (route.last() == Some(&gd) && !self.sink_group[gd as usize])
                .then(|| self.net.len[dest_lane as usize] * 0.5);
            let v = &mut self.vehicles[slot];
            v.set_route(route);
            v.dest_s_m = dest_s_m;
            v.wait_end_s = 0.0;
        }
    }

    /// The agents driven from outside (robots), for the following steps.
    pub fn set_external(&mut self, agents: &[crate::ExternalAgent]) {
        self.external = agents
            .iter()
            .map(|e| {
                let (sn, cs) = e.heading_rad.sin_cos();
                let half = [e.length_m.max(0.1) / 2.0, e.width_m.max(0.1) / 2.0];
                let b =
                    GuardBox { c: e.center, u: [cs, sn], half, radius: (half[0] * half[0] + half[1] * half[1]).sqrt() };
                (b, e.z_m, e.speed_mps)
            })
            .collect();
    }

    /// The walk edges of crossings that cut a lane within `r_m` of any of `points`.
    pub fn crossings_near(&self, points: &[[f64; 2]], r_m: f64) -> Vec<u32> {
        let mut out = Vec::new();
        for (l, cs) in self.net.crossings.iter().enumerate() {
            for &(s, edge) in cs {
                let q = self.net.position_at(l as u32, s);
                if points.iter().any(|p| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) <= r_m * r_m)
                    && !out.contains(&edge)
                {
                    out.push(edge);
                }
            }
        }
        out
    }

    /// Vehicles alive.
    pub fn count(&self) -> u32 {
        self.alive_count
    }

    fn lane_of(&self, piece: u32) -> Option<u32> {
        ((piece as usize) < self.net.n_lanes).then_some(piece)
    }

    fn rebuild_lists(&mut self) {
        for &p in &self.touched {
            self.lists[p as usize].clear();
        }
        self.touched.clear();
        for (slot, v) in self.vehicles.iter().enumerate() {
            if !v.alive {
                continue;
            }
            let l = &mut self.lists[v.piece as usize];
            if l.is_empty() {
                self.touched.push(v.piece);
            }
            l.push(Entry { s: v.s_m, slot: slot as u32, ghost: false, len_m: v.p.length_m, v_mps: v.v_mps });
            if v.ghost_lane != NONE {
                let g = v.ghost_lane as usize;
                let s = v.s_m * self.net.len[g] / self.net.len[v.piece as usize];
                if self.lists[g].is_empty() {
                    self.touched.push(v.ghost_lane);
                }
                self.lists[g].push(Entry { s, slot: slot as u32, ghost: true, len_m: v.p.length_m, v_mps: v.v_mps });
            }
        }
        // `touched` holds each non-empty list once: a piece is pushed only when its list is
        // empty.
        debug_assert!({
            let mut t = self.touched.clone();
            t.sort_unstable();
            t.windows(2).all(|w| w[0] != w[1])
        });
        for &p in &self.touched {
            self.lists[p as usize].sort_unstable_by(|a, b| a.s.total_cmp(&b.s).then(a.slot.cmp(&b.slot)));
        }
    }

    /// Planned connection out of lane `lane` for a vehicle (towards its next group).
    fn planned_conn(&self, v: &Vehicle, lane: u32, route_pos: usize) -> Option<u32> {
        let next = *v.route.get(route_pos + 1)?;
        self.net.conn_to_group(lane, next, is_long(v.p.length_m))
    }

    /// The piece after `piece` on `v`'s route, `route_pos` being the route index of
    /// `piece`'s group (advanced when `piece` is a connection): from a lane its planned
    /// connection (`None` where the route ends), from a connection its exit lane.
    fn piece_after(&self, v: &Vehicle, piece: u32, route_pos: &mut usize) -> Option<u32> {
        let nl = self.net.n_lanes as u32;
        if piece < nl {
            self.planned_conn(v, piece, *route_pos).map(|c| nl + c)
        } else {
            *route_pos += 1;
            Some(self.net.conn_to[(piece - nl) as usize])
        }
    }

    /// The [`Walk`] of `v` from where it is now.
    fn walk_of(&self, v: &Vehicle) -> Walk {
        let mut w = Walk { id: v.id, route_gen: v.route_gen, piece: v.piece, route_idx: v.route_idx, ..Walk::NONE };
        let (mut piece, mut rp) = (v.piece, v.route_idx);
        while w.n < WALK_HOPS {
            let Some(next) = self.piece_after(v, piece, &mut rp) else { break };
            w.next[w.n] = next;
            w.len_m[w.n] = self.net.len[next as usize];
            w.n += 1;
            piece = next;
        }
        w
    }

    /// The [`Walk`] of the vehicle in `slot`: the kept one while it holds (borrowed: it is
    /// read twice per vehicle and step, and copying it cost more than reading it).
    fn walk(&self, slot: u32) -> std::borrow::Cow<'_, Walk> {
        let v = &self.vehicles[slot as usize];
        match self.walks.get(slot as usize) {
            Some(w) if w.holds(v) => {
                // Debug builds check that what the key holds is still what the route gives.
                #[cfg(debug_assertions)]
                assert_eq!(*w, self.walk_of(v), "stale walk of slot {slot}");
                std::borrow::Cow::Borrowed(w)
            }
            _ => std::borrow::Cow::Owned(self.walk_of(v)),
        }
    }

    /// Recomputes the kept [`Walk`]s that no longer hold.
    fn refresh_walks(&mut self) {
        self.walks.resize(self.vehicles.len(), Walk::NONE);
        for slot in 0..self.vehicles.len() {
            let v = &self.vehicles[slot];
            if v.alive && !self.walks[slot].holds(v) {
                self.walks[slot] = self.walk_of(v);
            }
        }
    }

    /// Fills [`ListIndex`] from the lists as they stand (after the last step's rebuild and
    /// its spawns): the planning phase, which does not change the lists, reads it.
    fn index_lists(&mut self) {
        let nl = self.net.n_lanes as u32;
        let ix = &mut self.index;
        for &p in &ix.set {
            ix.heads[p as usize] = [Rear::NONE; 2];
            ix.occupied[p as usize] = 0;
            if p < nl {
                ix.overhang[p as usize] = Rear::NONE;
            }
        }
        ix.set.clear();
        ix.ahead.clear();
        ix.ahead.resize(self.vehicles.len(), Rear::NONE);
        for &p in &self.touched {
            let list = &self.lists[p as usize];
            if list.is_empty() {
                continue;
            }
            ix.set.push(p);
            ix.heads[p as usize] = [Rear::of(&list[0]), list.get(1).map_or(Rear::NONE, Rear::of)];
            ix.occupied[p as usize] |= HAS_HEAD;
            for w in list.windows(2) {
                if !w[0].ghost {
                    ix.ahead[w[0].slot as usize] = Rear::of(&w[1]);
                }
            }
            if p >= nl {
                let first = Rear::of(&list[0]);
                if first.rear_m() < 0.0 {
                    let c = p - nl;
                    let lane = self.net.conn_from[c as usize];
                    let cur = ix.overhang[lane as usize];
                    let better = cur.slot == NONE
                        || first.rear_m() < cur.rear_m()
                        || (first.rear_m() == cur.rear_m() && {
                            let out = &self.net.lane_out[lane as usize];
                            let rank = |slot: u32| {
                                out.iter().position(|&c2| {
                                    self.lists[(nl + c2) as usize].first().is_some_and(|e| e.slot == slot)
                                })
                            };
                            rank(first.slot) < rank(cur.slot)
                        });
                    if better {
                        if cur.slot == NONE {
                            ix.set.push(lane);
                        }
                        ix.overhang[lane as usize] = first;
                        ix.occupied[lane as usize] |= HAS_OVERHANG;
                    }
                }
            }
        }
    }

    /// Nearest vehicle ahead of `slot` along its route: (gap to its rear, its speed, slot).
    /// Reads [`ListIndex`]: valid in the planning phase only.
    fn leader(&self, slot: u32) -> Option<(f64, f64, u32)> {
        let v = &self.vehicles[slot as usize];
        let ix = &self.index;
        let ahead = ix.ahead[slot as usize];
        let first = (ahead.slot != NONE).then(|| (ahead.rear_m() - v.s_m, ahead.v_mps, ahead.slot));
        let overhang = |lane: u32, dist: f64, best: &mut Option<(f64, f64, u32)>| {
            if ix.occupied[lane as usize] & HAS_OVERHANG == 0 {
                return;
            }
            let o = ix.overhang[lane as usize];
            if o.slot == slot {
                // This vehicle's own overhang: the others', the slow way.
                self.overhang_by_search(slot, lane, dist, best);
            } else if o.slot != NONE {
                let g = dist + o.rear_m();
                if best.is_none_or(|b| g < b.0) {
                    *best = Some((g, o.v_mps, o.slot));
                }
            }
        };
        let head = |piece: u32| {
            if ix.occupied[piece as usize] & HAS_HEAD == 0 {
                return None;
            }
            let [h0, h1] = ix.heads[piece as usize];
            let h = if h0.slot == slot { h1 } else { h0 };
            (h.slot != NONE).then_some(h)
        };
        self.leader_along_route(slot, first, overhang, head)
    }

    /// [`VehicleSim::leader`] by searching the lists (its reference: debug builds check
    /// that both agree).
    #[cfg(debug_assertions)]
    fn leader_by_search(&self, slot: u32) -> Option<(f64, f64, u32)> {
        let v = &self.vehicles[slot as usize];
        let list = &self.lists[v.piece as usize];
        let i = list.partition_point(|e| (e.s, e.slot) <= (v.s_m, slot));
        let first = list[i..].iter().find(|e| e.slot != slot).map(|e| (e.s - e.len_m - v.s_m, e.v_mps, e.slot));
        let overhang =
            |lane: u32, dist: f64, best: &mut Option<(f64, f64, u32)>| self.overhang_by_search(slot, lane, dist, best);
        let head = |piece: u32| self.lists[piece as usize].iter().find(|e| e.slot != slot).map(Rear::of);
        self.leader_along_route(slot, first, overhang, head)
    }

    /// The walk of [`VehicleSim::leader`] along `slot`'s route, given the nearest vehicle
    /// ahead on its own piece (`first`), the vehicles overhanging a lane `dist` ahead from its
    /// outgoing connections (`overhang`, which updates the best so far) and the first other
    /// vehicle on a piece (`head`).
    fn leader_along_route(
        &self,
        slot: u32,
        first: Option<(f64, f64, u32)>,
        overhang: impl Fn(u32, f64, &mut Option<(f64, f64, u32)>),
        head: impl Fn(u32) -> Option<Rear>,
    ) -> Option<(f64, f64, u32)> {
        let v = &self.vehicles[slot as usize];
        let nl = self.net.n_lanes as u32;
        let walk = self.walk(slot);
        let mut best = first;
        let mut dist = self.net.len[v.piece as usize] - v.s_m;
        let mut piece = v.piece;
        let mut hops = 0;
        loop {
            if let Some(b) = best
                && b.0 < dist
            {
                return best;
            }
            // Overhang of vehicles that left this lane by another connection.
            if piece < nl {
                overhang(piece, dist, &mut best);
            }
            if dist > LOOKAHEAD_M || hops > 8 {
                return best;
            }
            // The route ends here.
            let Some((next, len_m)) = walk.hop(hops) else { return best };
            if let Some(h) = head(next) {
                let g = dist + h.s_m - h.len_m;
                if best.is_none_or(|b| g < b.0) {
                    best = Some((g, h.v_mps, h.slot));
                }
            }
            dist += len_m;
            piece = next;
            hops += 1;
        }
    }

    /// The rears of the first vehicles (other than `slot`) on `lane`'s outgoing connections
    /// that still overhang the lane, `dist` ahead: the nearest, if nearer than `best`.
    fn overhang_by_search(&self, slot: u32, lane: u32, dist: f64, best: &mut Option<(f64, f64, u32)>) {
        let nl = self.net.n_lanes as u32;
        for &c in &self.net.lane_out[lane as usize] {
            if let Some(e) = self.lists[(nl + c) as usize].first() {
                let rear = e.s - e.len_m;
                if rear < 0.0 && e.slot != slot {
                    let g = dist + rear;
                    if best.is_none_or(|b| g < b.0) {
                        *best = Some((g, e.v_mps, e.slot));
                    }
                }
            }
        }
    }

    /// Rear of an occupant along connection `c` (m).
    fn occupant_rear(&self, slot: u32, entry_odo: f64) -> f64 {
        let o = &self.vehicles[slot as usize];
        o.odo_m - o.p.length_m - entry_odo
    }

    /// Checks whether `slot` may enter connection `c`; returns the blocking vehicle.
    /// Holders it passes (standing still, waiting for it, clear of its path) are added to
    /// `passed` with the connection.
    fn grant_blocker(
        &self,
        slot: u32,
        c: u32,
        dist_to_end_m: f64,
        passed: &mut Vec<(u32, u32)>,
    ) -> Result<(), (u32, Wait)> {
        let v = &self.vehicles[slot as usize];
        let nl = self.net.n_lanes as u32;
        let ignore_yield = self.now_s < v.ignore_yield_until_s;
        // Claims of vehicles starved at their hold points, honoured by a vehicle that can
        // still stop (the oldest claim goes first).
        let hold_d = dist_to_end_m - 1.0;
        let can_stop = v.v_mps * v.v_mps / (2.0 * hold_d.max(0.01)) <= CLAIM_STOP_MPS2;
        let mine = self.claim_key(slot, c);
        // A claimant waiting for this vehicle (standing in its way) lets it go first.
        // A claimant held by a full exit (it waits for room on a lane of its claimed way)
        // could not use the zone now: its claim binds only vehicles that would take that
        // room, entering a lane its claimed way enters. (Jamsil: a left turn claiming its
        // way onto a lane queued back from the next signal held up a bus crossing its path,
        // and the bus's queue spilled back through the junction whose clearing the lane's
        // queue waited for.)
        let to = self.net.conn_to[c as usize];
        let older_claim = |other: u32| -> Option<u32> {
            let (w, since, id) = self.claims[other as usize];
            if w == NONE || w == slot || (since, id) >= mine {
                return None;
            }
            let wv = &self.vehicles[w as usize];
            let for_room = matches!(wv.why, Wait::ExitRoom | Wait::ExitReserved);
            (wv.blocked_by != slot && (!for_room || wv.claimed.iter().any(|&cc| self.net.conn_to[cc as usize] == to)))
                .then_some(w)
        };
        let long = |x: &Vehicle| is_long(x.p.length_m);
        for cf in &self.net.conflicts[c as usize] {
            // (A conflict of bodies only binds when one of the two is long.)
            if can_stop
                && !ignore_yield
                && let Some(w) = older_claim(cf.other)
                && (!cf.long_only || long(v) || long(&self.vehicles[w as usize]))
            {
                return Err((w, Wait::Conflict));
            }
            for &(o, entry) in &self.occupants[cf.other as usize] {
                if cf.long_only && !long(v) && !long(&self.vehicles[o as usize]) {
                    continue;
                }
                if o != slot && self.occupant_rear(o, entry) < cf.other_end_m + 0.5 {
                    // A holder standing still that waits for this vehicle (or any, in a
                    // deadlock resolution's last resort) is passed if its body is not in
                    // the way.
                    let ov = &self.vehicles[o as usize];
                    let reach_m = dist_to_end_m + self.net.len[(nl + c) as usize] + v.p.length_m;
                    if ov.v_mps < 0.05 && (ignore_yield || ov.blocked_by == slot) && !self.path_hits(slot, o, reach_m) {
                        passed.push((o, c));
                        continue;
                    }
                    return Err((o, Wait::Conflict));
                }
            }
            if cf.yield_to_other && !ignore_yield {
                let from = self.net.conn_from[cf.other as usize];
                let x = dist_to_end_m + cf.my_end_m + v.p.length_m;
                // Impatience: the gap a driver waits for shrinks after a long wait (see
                // IMPATIENT_AFTER_S).
                let patience = 1.0 - ((v.stopped_s - IMPATIENT_AFTER_S) / IMPATIENT_RAMP_S).clamp(0.0, 1.0);
                let t_clear = ((2.0 * x / v.p.a_mps2).sqrt().max(x / v.v_mps.max(0.1).max(3.0)) + 1.5) * patience;
                let lane_len = self.net.len[from as usize];
                for e in self.lists[from as usize].iter().rev() {
                    let d = lane_len - e.s;
                    if d > 90.0 {
                        break;
                    }
                    if e.ghost || e.slot == slot {
                        continue;
                    }
                    let o = &self.vehicles[e.slot as usize];
                    if o.held.iter().any(|h| h.0 == cf.other) {
                        continue;
                    }
                    // One that will stop for this vehicle's claim is no threat.
                    let o_hold_d = d - (lane_len - self.net.hold_s[from as usize]);
                    if mine.0 < f64::INFINITY && o.v_mps * o.v_mps / (2.0 * o_hold_d.max(0.01)) <= CLAIM_STOP_MPS2 {
                        continue;
                    }
                    if o.v_mps > 1.0 && d / o.v_mps < t_clear {
                        let oc = self.planned_conn(o, from, o.route_idx);
                        if oc == Some(cf.other) || oc.is_none() {
                            return Err((e.slot, Wait::Priority));
                        }
                    }
                }
            }
        }
        // No vehicle standing where the sweep of this connection reaches (a vehicle already in
        // a junction it holds must get out, so it is not held back by this).
        if v.held.is_empty() {
            for &(l, safe_car, safe_long) in &self.net.intruded_by[c as usize] {
                if let Some(e) = self.lists[l as usize].iter().rev().find(|e| !e.ghost && e.slot != slot) {
                    let o = &self.vehicles[e.slot as usize];
                    let safe_s = if o.p.length_m > 5.0 { safe_long } else { safe_car };
                    // A vehicle driving on through its own reservation does not stand there.
                    let passing = o.v_mps > 1.0 && o.held.iter().any(|h| self.net.conn_from[h.0 as usize] == l);
                    // One standing where the sweep reaches, but waiting for this vehicle (or
                    // in a deadlock resolution's last resort), holds it back only if its body
                    // is really in the way.
                    let waits = o.v_mps < 0.05 && (o.blocked_by == slot || ignore_yield);
                    let reach_m = dist_to_end_m + self.net.len[(nl + c) as usize] + v.p.length_m;
                    if e.s > safe_s + 0.05 && !passing {
                        if !waits || self.path_hits(slot, e.slot, reach_m) {
                            return Err((e.slot, Wait::Conflict));
                        }
                        passed.push((e.slot, c));
                    }
                }
            }
        }
        // Room on the exit lane (no blocking the box).
        let to = self.net.conn_to[c as usize];
        let to_len = self.net.len[to as usize];
        let mut free = to_len;
        if let Some(e) = self.lists[to as usize].first() {
            let o = &self.vehicles[e.slot as usize];
            free = e.s - o.p.length_m;
            // Room to stop with the rear clear of the connection's conflict zone.
            let need = (self.net.zone_tail_m(c) + v.p.length_m + v.p.s0_m).min(to_len);
            if free < need && o.v_mps < 3.0 && free < to_len {
                return Err((e.slot, Wait::ExitRoom));
            }
        }
        let mut reserved = 0.0;
        let mut reserver = NONE;
        for &ci in &self.net.lane_in[to as usize] {
            for &(o, entry) in &self.occupants[ci as usize] {
                if o == slot {
                    continue;
                }
                let ov = &self.vehicles[o as usize];
                if ov.odo_m < entry + self.net.len[(nl + ci) as usize] + 0.01 && ov.piece != to {
                    reserved += ov.p.length_m + ov.p.s0_m;
                    if reserver == NONE {
                        reserver = o;
                    }
                }
            }
        }
        let need = (self.net.zone_tail_m(c) + v.p.length_m + v.p.s0_m).min(to_len);
        if reserved > 0.0 && free - reserved < need {
            return Err((reserver, Wait::ExitReserved));
        }
        // The queue on the exit lane, compacted at its hold point, must leave room to
        // stop clear of the zone (a lane reserved through is checked by the chain).
        let cap = self.net.clear_s[to as usize].min(self.net.hold_s[to as usize]) - self.net.zone_tail_m(c);
        if !self.net.lane_out[to as usize].is_empty() && cap >= v.p.length_m + v.p.s0_m {
            let queued = self.queued_m(to, slot);
            if cap - queued - reserved < v.p.length_m + v.p.s0_m
                && let Some(e) = self.lists[to as usize].iter().find(|e| !e.ghost && e.slot != slot)
            {
                return Err((e.slot, Wait::ExitRoom));
            }
        }
        // No vehicle standing where the body will pass: whatever the rules say, a way
        // through a standing body would stop in it (a lock no rule can undo).
        let reach_m = dist_to_end_m + self.net.len[(nl + c) as usize] + v.p.length_m;
        if let Some(o) = self.standing_in_path(slot, reach_m) {
            return Err((o, Wait::Conflict));
        }
        Ok(())
    }

    /// A vehicle standing still (slower than [`STANDING_MPS`]) whose body `slot`'s body,
    /// driven along its route up to `reach_m` ahead, would come within [`GUARD_MARGIN_M`]
    /// of (nearer than it is now).
    fn standing_in_path(&self, slot: u32, reach_m: f64) -> Option<u32> {
        let v = &self.vehicles[slot as usize];
        let (cur, z) = self.guard_boxes[slot as usize];
        // Candidates: standing vehicles within reach of the body.
        let r = reach_m + cur.radius + self.max_radius_m;
        let (cx0, cy0) = grid_cell([cur.c[0] - r, cur.c[1] - r], GUARD_CELL_M);
        let (cx1, cy1) = grid_cell([cur.c[0] + r, cur.c[1] + r], GUARD_CELL_M);
        let mut cand: Vec<(u32, GuardBox)> = Vec::new();
        for cx in cx0..=cx1 {
            let (first, last) = (guard_entry((cx, cy0), 0), guard_entry((cx, cy1), SLOT_MASK));
            let lo = self.guard_grid.partition_point(|&e| e < first);
            for &e in &self.guard_grid[lo..] {
                if e > last {
                    break;
                }
                let o = (e as u32) & SLOT_MASK;
                if o == slot || self.vehicles[o as usize].v_mps >= STANDING_MPS {
                    continue;
                }
                let (ob, oz) = self.guard_boxes[o as usize];
                let d2 = (ob.c[0] - cur.c[0]).powi(2) + (ob.c[1] - cur.c[1]).powi(2);
                if (oz - z).abs() < crate::metrics::LEVEL_SEPARATION_M && d2 < r * r {
                    cand.push((o, ob));
                }
            }
        }
        if cand.is_empty() {
            return None;
        }
        let mut d = 1.0;
        while d <= reach_m {
            let Some((pc, sc, prev)) = self.ahead_on_route(v, d) else { break };
            let (f, rr) = self.pose_at(v, pc, sc, prev, 0.0);
            let b = body_box_of(f, rr, &v.p, v.heading_rad);
            for &(o, ob) in &cand {
                let reach = b.radius + ob.radius + GUARD_MARGIN_M;
                if (ob.c[0] - b.c[0]).powi(2) + (ob.c[1] - b.c[1]).powi(2) > reach * reach {
                    continue;
                }
                let depth = b.depth(&ob);
                if depth > -GUARD_MARGIN_M && depth > cur.depth(&ob) + 1e-4 {
                    return Some(o);
                }
            }
            d += 1.5;
        }
        None
    }

    /// The connections `slot` claims now (diagnostics; see [`CLAIM_AFTER_S`]).
    pub fn claimed(&self, slot: usize) -> &[u32] {
        &self.vehicles[slot].claimed
    }

    /// The order of `slot`'s claim on connection `c` among claims (infinite without one).
    fn claim_key(&self, slot: u32, c: u32) -> (f64, u64) {
        let (w, since, id) = self.claims[c as usize];
        if w == slot { (since, id) } else { (f64::INFINITY, u64::MAX) }
    }

    /// Drops every claim of `slot`.
    fn drop_claims(&mut self, slot: u32) {
        for c in std::mem::take(&mut self.vehicles[slot as usize].claimed) {
            if self.claims[c as usize].0 == slot {
                self.claims[c as usize] = (NONE, 0.0, 0);
            }
        }
    }

    /// The piece, position and previous piece of a point `ahead_m` beyond a vehicle's front
    /// along its route (`None` where its route does not go on).
    fn ahead_on_route(&self, v: &Vehicle, ahead_m: f64) -> Option<(u32, f64, u32)> {
        let (mut piece, mut s, mut prev, mut rp) = (v.piece, v.s_m + ahead_m, v.prev_piece, v.route_idx);
        for _ in 0..4 {
            let len = self.net.len[piece as usize];
            if s <= len {
                return Some((piece, s, prev));
            }
            let next = self.piece_after(v, piece, &mut rp)?;
            s -= len;
            prev = piece;
            piece = next;
        }
        None
    }

    /// The piece a vehicle drove on before `pc` (one of its current, previous or planned
    /// pieces): from its history, else a connection's lane, else none.
    fn piece_before(&self, v: &Vehicle, pc: u32) -> u32 {
        let nl = self.net.n_lanes as u32;
        let chain = [v.piece, v.prev_piece, v.history[0], v.history[1], v.history[2]];
        if let Some(k) = chain[..4].iter().position(|&x| x == pc && x != NONE) {
            chain[k + 1]
        } else if pc >= nl {
            self.net.conn_from[(pc - nl) as usize]
        } else {
            NONE
        }
    }

    /// Front and rear of a vehicle if its front were at `s` on `piece` (entered from `prev`),
    /// `lat_m` off the centre line when that is its own lane.
    fn pose_at(&self, v: &Vehicle, piece: u32, s: f64, prev: u32, lat_m: f64) -> ([f64; 3], [f64; 3]) {
        let nl = self.net.n_lanes as u32;
        let lat = if piece == v.piece && piece < nl { lat_m } else { 0.0 };
        if lat == 0.0 && s - v.p.length_m >= 0.0 {
            // The body on one piece: one search for both ends.
            let (f, r, _) = self.net.front_rear_on_piece(piece, s, s - v.p.length_m);
            return (f, r);
        }
        let f = if lat != 0.0 {
            let (mut f, h) = self.net.point_at(piece, s);
            f[0] -= h.sin() * lat;
            f[1] += h.cos() * lat;
            f
        } else {
            self.net.position_at(piece, s)
        };
        let (mut pc, mut rs, mut pv) = (piece, s - v.p.length_m, prev);
        let r = loop {
            if rs >= 0.0 || pv == NONE {
                break self.net.position_at(pc, rs);
            }
            // Entered `pc` from `pv`: step back onto it.
            let before = self.piece_before(v, pv);
            rs += self.net.len[pv as usize];
            pc = pv;
            pv = before;
        };
        let mut r = r;
        if lat != 0.0 {
            let lat_r = rear_lat_m(v, lat);
            let (_, hr) = self.net.point_at(piece, (s - v.p.length_m).max(0.0));
            r[0] -= hr.sin() * lat_r;
            r[1] += hr.cos() * lat_r;
        }
        (f, r)
    }

    /// Whether `slot`'s body, driven along its route up to `reach_m` ahead, would come
    /// within [`GUARD_MARGIN_M`] of `other`'s body as it stands, and closer than it stands
    /// now (as the clearance guard judges a step: a vehicle already within the margin of
    /// another, a truck's rear beside it at a tight turn, may drive on away from it).
    fn path_hits(&self, slot: u32, other: u32, reach_m: f64) -> bool {
        let v = &self.vehicles[slot as usize];
        let ob = &self.guard_boxes[other as usize].0;
        let now = self.guard_boxes[slot as usize].0.depth(ob);
        let mut d = 0.5;
        while d <= reach_m {
            let Some((pc, sc, prev)) = self.ahead_on_route(v, d) else { break };
            let (f, r) = self.pose_at(v, pc, sc, prev, 0.0);
            let depth = body_box_of(f, r, &v.p, v.heading_rad).depth(ob);
            if depth > -GUARD_MARGIN_M && depth > now + 1e-3 {
                return true;
            }
            d += 0.5;
        }
        false
    }

    /// The nearest pedestrian on the path ahead of `slot` (its route's centre line, within its
    /// half width and [`PED_PASS_MARGIN_M`]) within its braking distance and [`PED_LOOK_M`],
    /// up to the next junction: distance from the front and from the centre line (m).
    fn pedestrian_ahead(&self, slot: u32, pedestrians: &[[f64; 4]]) -> Option<(f64, f64)> {
        let v = &self.vehicles[slot as usize];
        let nl = self.net.n_lanes as u32;
        if pedestrians.is_empty() {
            return None;
        }
        let (cur, z) = self.guard_boxes[slot as usize];
        let reach = v.v_mps * v.v_mps / (2.0 * v.p.b_mps2) + PED_LOOK_M;
        let half_w = cur.half[1] + PED_PASS_MARGIN_M;
        let front = [cur.c[0] + cur.u[0] * cur.half[0], cur.c[1] + cur.u[1] * cur.half[0]];
        // Candidates: pedestrians within reach of the front (the path ahead is no longer).
        let r = reach + half_w;
        let (cx0, cy0) = grid_cell([front[0] - r, front[1] - r], PED_CELL_M);
        let (cx1, cy1) = grid_cell([front[0] + r, front[1] + r], PED_CELL_M);
        let mut near: Vec<[f64; 3]> = Vec::new();
        for cx in cx0..=cx1 {
            let (first, last) = (guard_entry((cx, cy0), 0), guard_entry((cx, cy1), SLOT_MASK));
            let lo = self.ped_grid.partition_point(|&e| e < first);
            for &e in &self.ped_grid[lo..] {
                if e > last {
                    break;
                }
                let p = pedestrians[((e as u32) & SLOT_MASK) as usize];
                if (p[2] - z).abs() < crate::metrics::LEVEL_SEPARATION_M
                    && (p[0] - front[0]).powi(2) + (p[1] - front[1]).powi(2) < r * r
                {
                    near.push([p[0], p[1], p[3]]);
                }
            }
        }
        if near.is_empty() {
            return None;
        }
        // Walk the path ahead in steps, nearest first.
        let mut prev = front;
        let mut d = 0.0;
        while d < reach {
            let next_d = (d + PED_PATH_STEP_M).min(reach);
            let Some((pc, sc, _)) = self.ahead_on_route(v, next_d) else { break };
            // Beyond the vehicle's own lane (through a junction and onto the next lane) only
            // walking pedestrians count: junction paths pass close to the kerbs where
            // pedestrians stand waiting to cross (by their own rules, for these very
            // vehicles).
            let in_junction = pc >= nl || v.piece >= nl || pc != v.piece;
            let q = self.net.position_at(pc, sc);
            let q = [q[0], q[1]];
            for p in &near {
                if in_junction && p[2] < PED_WALKING_MPS {
                    continue;
                }
                let (dist_m, t) = segment_distance([p[0], p[1]], prev, q);
                if dist_m < half_w {
                    return Some((d + t * (next_d - d), dist_m));
                }
            }
            prev = q;
            d = next_d;
        }
        None
    }

    /// Whether no other box is near enough for the clearance guard to matter to `slot` this
    /// step: every other centre farther than both radii, the most the vehicle can advance in
    /// a step plus [`GUARD_MARGIN_M`], and [`NEAR_SLACK_M`]. No step of such a vehicle can
    /// touch another box, nor can another vehicle's step touch where it goes, so the guard
    /// skips it. Reads only the step's start (the boxes, the coarse grid and the vehicle's
    /// speed, which planning does not change), so it is asked only of the vehicles the guard
    /// would check: the coarse grid's three columns next to the vehicle's cell.
    fn isolated(&self, slot: u32) -> bool {
        let e = self.near_keys[slot as usize];
        if !self.external.is_empty() || e == u64::MAX {
            return false;
        }
        let (col, row) = ((e >> 44) as i64, ((e >> 24) & 0xf_ffff) as i64);
        let v = &self.vehicles[slot as usize];
        let cur = &self.guard_boxes[slot as usize].0;
        let ahead_m = v.v_mps * DT_S + 0.5 * v.p.a_mps2 * DT_S * DT_S + GUARD_MARGIN_M;
        if cur.radius + self.max_radius_m + ahead_m + NEAR_SLACK_M > NEAR_CELL_M {
            return false;
        }
        let grid = &self.near_grid;
        for dx in -1..=1 {
            // The cells of a column are one run of the sorted grid.
            let (first, last) = (pack_entry(col + dx, row - 1, 0), pack_entry(col + dx, row + 1, SLOT_MASK));
            let lo = grid.partition_point(|&x| x < first);
            for &oe in &grid[lo..] {
                if oe > last {
                    break;
                }
                let o = ((oe as u32) & SLOT_MASK) as usize;
                if o == slot as usize {
                    continue;
                }
                let ob = &self.guard_boxes[o].0;
                let reach = cur.radius + ob.radius + ahead_m + NEAR_SLACK_M;
                if (ob.c[0] - cur.c[0]).powi(2) + (ob.c[1] - cur.c[1]).powi(2) < reach * reach {
                    return false;
                }
            }
        }
        true
    }

    /// The vehicle whose box (at the step's start) the body of `slot` would newly overlap
    /// with its front `ahead_m` farther along its route.
    /// Also returns the predicted box (`Err` when the route does not go on that far).
    fn guard_blocker(&self, slot: u32, ahead_m: f64) -> Result<(Option<u32>, GuardBox), ()> {
        let v = &self.vehicles[slot as usize];
        // Where the route ends (a lane leaving the district), its last piece's end.
        let (piece, s, prev) = self
            .ahead_on_route(v, ahead_m)
            .or_else(|| {
                let to_end = self.net.len[v.piece as usize] - v.s_m;
                (to_end < ahead_m).then(|| self.ahead_on_route(v, to_end.max(0.0))).flatten()
            })
            .ok_or(())?;
        let (f, r) = self.pose_at(v, piece, s, prev, lat_after_step(v.lat_m));
        let pred = body_box_of(f, r, &v.p, v.heading_rad);
        Ok((self.box_blocker(slot, pred, (f[2] + r[2]) / 2.0), pred))
    }

    /// The vehicle whose box (at the step's start) `pred` would newly overlap, or overlap
    /// deeper than the body of `slot` does now.
    fn box_blocker(&self, slot: u32, pred: GuardBox, z: f64) -> Option<u32> {
        let (cur, _) = self.guard_boxes[slot as usize];
        // Into another box, or deeper into it than now.
        let blocks = |o: &GuardBox| {
            let d = pred.depth(o);
            d > crate::metrics::CONTACT_EPS_M && d > cur.depth(o).max(0.0) + 1e-4
        };
        self.box_in_way(slot, &pred, z, 0.0, blocks)
    }

    /// The first other body on the level `z` for which `blocks` holds (an external agent:
    /// `NONE`), searched in the guard grid's cells next to `pred`'s and `reach_m` farther;
    /// each vehicle as it stands at the step's start and where it goes if it was planned
    /// already.
    fn box_in_way(
        &self,
        slot: u32,
        pred: &GuardBox,
        z: f64,
        reach_m: f64,
        blocks: impl Fn(&GuardBox) -> bool,
    ) -> Option<u32> {
        for (eb, ez, _) in &self.external {
            if (ez - z).abs() < crate::metrics::LEVEL_SEPARATION_M && blocks(eb) {
                return Some(NONE);
            }
        }
        let (cx, cy) = grid_cell(pred.c, GUARD_CELL_M);
        let k = 1 + (reach_m / GUARD_CELL_M).ceil() as i64;
        for dx in -k..=k {
            // The cells of a column are one run of the sorted grid.
            let (first, last) = (guard_entry((cx + dx, cy - k), 0), guard_entry((cx + dx, cy + k), SLOT_MASK));
            let lo = self.guard_grid.partition_point(|&e| e < first);
            for &e in &self.guard_grid[lo..] {
                if e > last {
                    break;
                }
                let o = (e as u32) & SLOT_MASK;
                if o == slot {
                    continue;
                }
                let (ob, oz) = self.guard_boxes[o as usize];
                if (oz - z).abs() >= crate::metrics::LEVEL_SEPARATION_M {
                    continue;
                }
                // Where the other stands, and where it goes if it was planned already.
                if std::iter::once(ob).chain(self.guard_next[o as usize]).any(|ob| blocks(&ob)) {
                    return Some(o);
                }
            }
        }
        None
    }

    /// Overlap zones a vehicle takes together with its reservation of `chain` (connections
    /// with the distance from its front to their start), so that it never stands in a zone
    /// while it waits for a junction nor in a junction while it waits for a zone: the zones
    /// its body would stand in at the hold point of its lane (starting at most
    /// [`ATOMIC_ZONE_REACH_M`] before it), those on the connections and on the lanes reserved
    /// through, and those on the exit lane that start before its first stop clear of the
    /// last connection. Per zone: (zone, side, distance from the front to its start, to its
    /// end).
    fn junction_zones(&self, v: &Vehicle, chain: &[(u32, f64)]) -> Vec<(u32, u8, f64, f64)> {
        let nl = self.net.n_lanes as u32;
        let mut out = Vec::new();
        let mut add = |piece: u32, off: f64, keep: &dyn Fn(f64, f64) -> bool| {
            for &(z, side) in &self.net.lane_zones[piece as usize] {
                let (_, s0, s1) = self.net.zones[z as usize][side as usize];
                if keep(s0, s1) && !out.iter().any(|o: &(u32, u8, f64, f64)| o.0 == z) {
                    out.push((z, side, off + s0, off + s1));
                }
            }
        };
        let hold = self.net.hold_s[v.piece as usize];
        let body = v.p.length_m + 0.5;
        add(v.piece, -v.s_m, &|s0, s1| s1 > hold - body && s0 > hold - ATOMIC_ZONE_REACH_M);
        for (k, &(c, d)) in chain.iter().enumerate() {
            add(nl + c, d, &|_, _| true);
            let to = self.net.conn_to[c as usize];
            let off = d + self.net.len[(nl + c) as usize];
            if k + 1 < chain.len() {
                add(to, off, &|_, _| true);
            } else {
                let stop = self.net.zone_tail_m(c) + v.p.length_m + v.p.s0_m + 1.0;
                add(to, off, &|s0, _| s0 < stop);
            }
        }
        out
    }

    /// Checks whether `slot`, `d_m` before the start of its side of overlap zone `z`, may
    /// take it; returns the blocking vehicle.
    fn zone_blocker(
        &self,
        slot: u32,
        z: u32,
        side: u8,
        d_m: f64,
        leader: Option<(f64, f64, u32)>,
    ) -> Result<(), (u32, Wait)> {
        let v = &self.vehicles[slot as usize];
        let ignore_yield = self.now_s < v.ignore_yield_until_s;
        let (_, s0, s1) = self.net.zones[z as usize][side as usize];
        // How far this vehicle drives until its rear is through the zone (m).
        let x = d_m.max(0.0) + (s1 - s0) + v.p.length_m;
        for &(o, os) in &self.zone_occ[z as usize] {
            if os == side || o == slot {
                continue;
            }
            // A deadlock resolution's last resort: a holder standing still is passed, under
            // the clearance guard.
            let ov = &self.vehicles[o as usize];
            if ignore_yield && ov.v_mps < 0.05 {
                continue;
            }
            // A holder standing short of the zone and waiting for this vehicle (for its
            // claim) is passed too, if its body is clear of this vehicle's path: it goes
            // only once this vehicle has gone.
            let short_of_it = ov.zheld.iter().any(|h| h.0 == z && ov.odo_m < h.1);
            if ov.v_mps < 0.05 && ov.blocked_by == slot && short_of_it && !self.path_hits(slot, o, x) {
                continue;
            }
            return Err((o, Wait::Zone));
        }
        // Room beyond the zone: no stopping inside it; behind any leader at all when a
        // vehicle of the other side waits for the zone (keep it clear, or a queue through
        // it starves that side for good).
        let (lo, o0, _) = self.net.zones[z as usize][1 - side as usize];
        let other_waits =
            || self.lists[lo as usize].iter().any(|e| !e.ghost && e.v_mps < 0.5 && e.s > o0 - 15.0 && e.s <= o0 + 0.5);
        if let Some((gap, lv, ls)) = leader
            && d_m > 0.0
            && gap < x + 1.0
            && (lv < 3.0 || other_waits())
        {
            return Err((ls, Wait::ExitRoom));
        }
        if side == 1 && !ignore_yield {
            let (la, a0, a1) = self.net.zones[z as usize][0];
            let t_clear = (2.0 * x / v.p.a_mps2).sqrt().max(x / v.v_mps.max(3.0)) + 1.5;
            for e in &self.lists[la as usize] {
                if e.slot == slot {
                    continue;
                }
                let o = &self.vehicles[e.slot as usize];
                if e.s - o.p.length_m > a1 {
                    continue;
                }
                if e.s >= a0 {
                    return Err((e.slot, Wait::Zone));
                }
                if o.v_mps > 0.5 && (a0 - e.s) / o.v_mps < t_clear {
                    return Err((e.slot, Wait::Zone));
                }
            }
        }
        Ok(())
    }

    fn zone_release(&mut self, slot: u32, z: u32) {
        self.zone_occ[z as usize].retain(|x| x.0 != slot);
        self.vehicles[slot as usize].zheld.retain(|h| h.0 != z);
    }

    fn release(&mut self, slot: u32, c: u32) {
        self.occupants[c as usize].retain(|x| x.0 != slot);
        self.vehicles[slot as usize].held.retain(|h| h.0 != c);
    }

    /// One step of all vehicles.
    pub fn step(&mut self, ctx: &StepCtx, events: &mut Vec<SimEvent>) {
        let twin = ctx.twin;
        let nl = self.net.n_lanes as u32;
        let n = self.vehicles.len();
        events.append(&mut self.pending_events);
        self.now_s = ctx.time_s;
        // The clearance guard's view of the step's start.
        self.max_radius_m = 0.0;
        self.guard_boxes.clear();
        self.guard_next.clear();
        self.guard_next.resize(n, None);
        let (mut guard_keys, mut near_keys) =
            (std::mem::take(&mut self.guard_keys), std::mem::take(&mut self.near_keys));
        guard_keys.clear();
        near_keys.clear();
        for slot in 0..n {
            let v = &self.vehicles[slot];
            if !v.alive {
                self.guard_boxes.push((GuardBox::EMPTY, 0.0));
                guard_keys.push(u64::MAX);
                near_keys.push(u64::MAX);
                continue;
            }
            let (f, r) = self.pose_of_slot(slot);
            let b = body_box_of(f, r, &v.p, v.heading_rad);
            guard_keys.push(guard_entry(grid_cell(b.c, GUARD_CELL_M), slot as u32));
            near_keys.push(guard_entry(grid_cell(b.c, NEAR_CELL_M), slot as u32));
            self.max_radius_m = self.max_radius_m.max(b.radius);
            self.guard_boxes.push((b, (f[2] + r[2]) / 2.0));
        }
        regrid(&mut self.guard_grid, &guard_keys, &mut self.regrid_seen);
        regrid(&mut self.near_grid, &near_keys, &mut self.regrid_seen);
        (self.guard_keys, self.near_keys) = (guard_keys, near_keys);
        self.ped_grid.clear();
        for (k, p) in ctx.pedestrians.iter().enumerate() {
            self.ped_grid.push(guard_entry(grid_cell([p[0], p[1]], PED_CELL_M), k as u32));
        }
        self.ped_grid.sort_unstable();
        self.index_lists();
        self.refresh_walks();
        // Phase 1: accelerations, reservations.
        for slot in 0..n as u32 {
            if !self.vehicles[slot as usize].alive {
                continue;
            }
            self.plan(ctx, slot, events);
        }
        // Phase 2: lane changes.
        for slot in 0..n as u32 {
            let v = &self.vehicles[slot as usize];
            if !v.alive || v.piece >= nl || !(ctx.step as u64 + v.id).is_multiple_of(5) {
                continue;
            }
            self.lane_change(twin, slot);
        }
        // Phase 3: motion.
        for slot in 0..n as u32 {
            if !self.vehicles[slot as usize].alive {
                continue;
            }
            self.advance(ctx, slot, events);
        }
        self.rebuild_lists();
        // Deadlocks.
        if ctx.step.is_multiple_of(50) {
            self.resolve_deadlocks(ctx, events);
        }
        // Routes under the traffic.
        let period = (REROUTE_PERIOD_S / DT_S).round() as u32;
        if ctx.step > 0 && ctx.step.is_multiple_of(period) {
            self.reroute_under_traffic(ctx.time_s);
        }
        // Spawning.
        let mut k = 0;
        while self.alive_count < self.target && k < 3 {
            let at_edge = self.rng.chance(0.7);
            self.try_spawn(twin, ctx.step, ctx.time_s, at_edge, events);
            k += 1;
        }
    }

    fn plan(&mut self, ctx: &StepCtx, slot: u32, events: &mut Vec<SimEvent>) {
        let _ = events;
        self.vehicles[slot as usize].reverse_step_m = 0.0;
        if self.vehicles[slot as usize].reverse_for != NONE && self.plan_reverse(ctx, slot) {
            return;
        }
        let twin = ctx.twin;
        let nl = self.net.n_lanes as u32;
        let leader = self.leader(slot);
        #[cfg(debug_assertions)]
        assert_eq!(leader, self.leader_by_search(slot), "leader of slot {slot} at {} s", ctx.time_s);
        let v = &self.vehicles[slot as usize];
        let p = v.p;
        let piece = v.piece;
        let plen = self.net.len[piece as usize];
        let mut v0 = self.net.vmax[piece as usize] * p.speed_factor;
        // A curve of this lane that the body is in (front past its start, rear not past its
        // end) caps the desired speed.
        let curves: &[Curve] = if piece < nl { &self.net.curves[piece as usize] } else { &[] };
        for c in curves.iter().filter(|c| c.s0_m <= v.s_m && c.s1_m >= v.s_m - p.length_m) {
            v0 = v0.min(c.v_mps * p.speed_factor);
        }
        let mut a = idm_free(&p, v.v_mps, v0);
        let mut a_obst = a;
        let mut max_adv = f64::INFINITY;
        let mut blocked_by = NONE;
        let mut why = Wait::None;
        if let Some((gap, lv, ls)) = leader {
            let al = idm_accel(&p, v.v_mps, v0, gap, v.v_mps - lv);
            if al < a {
                a = al;
                blocked_by = ls;
                why = Wait::Leader;
            }
            max_adv = max_adv.min((gap - 0.3).max(0.0));
            // A leader backing away (a deadlock resolution) gets the room behind it: its
            // follower stays where it is.
            if gap < 20.0 && self.vehicles[ls as usize].reverse_for != NONE {
                a = a.min(-v.v_mps / DT_S).max(-B_MAX_MPS2);
                max_adv = 0.0;
                blocked_by = ls;
                why = Wait::Leader;
            }
        }
        let q = Params { s0_m: 0.5, ..p };
        let v_cur = v.v_mps;
        // Let pass by another while standing clear of its path: stay clear of it while it
        // holds the connection it was granted then.
        let stay = v.stay_conn != NONE && {
            let pv = &self.vehicles[v.stay_for as usize];
            pv.alive
                && pv.id == v.stay_for_id
                && ctx.time_s < v.stay_until_s
                && pv.held.iter().any(|h| h.0 == v.stay_conn)
        };
        if stay {
            a = a.min(-v_cur / DT_S).max(-B_MAX_MPS2);
            a_obst = a_obst.min(a);
            max_adv = 0.0;
            blocked_by = v.stay_for;
            why = Wait::Conflict;
        }
        let stay_over = !stay && v.stay_conn != NONE;
        let stop_at = |d: f64, hard: bool, a: &mut f64, a_obst: &mut f64, max_adv: &mut f64| {
            let ao = idm_accel(&q, v_cur, v0, d.max(0.0) + 0.01, v_cur);
            *a = a.min(ao);
            *a_obst = a_obst.min(ao);
            if hard {
                *max_adv = max_adv.min(d.max(0.0));
            }
        };
        // Speed limits ahead and crossings on the lanes ahead.
        let mut dist = plen - v.s_m;
        let v_now = v.v_mps;
        // Slow down before curves: to reach a curve's speed at its start.
        let brake_for_curve = |d: f64, c: &Curve, a: &mut f64, a_obst: &mut f64| {
            let vc = c.v_mps * p.speed_factor;
            if v_now > vc {
                let need = (v_now * v_now - vc * vc) / (2.0 * d.max(1.0));
                *a = a.min(-need * 1.1);
                *a_obst = a_obst.min(-need * 1.1);
            }
        };
        for c in curves.iter().filter(|c| c.s0_m > v.s_m && c.s0_m - v.s_m < LOOKAHEAD_M) {
            brake_for_curve(c.s0_m - v.s_m, c, &mut a, &mut a_obst);
        }
        if piece < nl {
            for &(cs, edge) in &self.net.crossings[piece as usize] {
                let d = cs - 2.5 - v.s_m;
                if d > -1.5 && d < 60.0 && (ctx.occupied)(edge) && v_now * v_now / (2.0 * d.max(0.01)) < 6.0 {
                    stop_at(d, true, &mut a, &mut a_obst, &mut max_adv);
                }
            }
        }
        let mut next_conn: Option<u32> = None;
        let walk = self.walk(slot);
        for hop in 0..4 {
            if dist > LOOKAHEAD_M {
                break;
            }
            // The route ends here.
            let Some((nxt, nxt_len_m)) = walk.hop(hop) else { break };
            if hop == 0 && piece < nl {
                next_conn = Some(nxt - nl);
            }
            let vm = self.net.vmax[nxt as usize] * p.speed_factor;
            if v_now > vm {
                let need = (v_now * v_now - vm * vm) / (2.0 * dist.max(1.0));
                a = a.min(-need * 1.1);
                a_obst = a_obst.min(-need * 1.1);
            }
            if nxt < nl {
                for c in self.net.curves[nxt as usize].iter().take_while(|c| dist + c.s0_m < LOOKAHEAD_M) {
                    brake_for_curve(dist + c.s0_m, c, &mut a, &mut a_obst);
                }
                for &(cs, edge) in &self.net.crossings[nxt as usize] {
                    let d = dist + cs - 2.5;
                    if d < 60.0 && (ctx.occupied)(edge) && v_now * v_now / (2.0 * d.max(0.01)) < 6.0 {
                        stop_at(d, true, &mut a, &mut a_obst, &mut max_adv);
                    }
                }
                // A red signal at the end of the next lane.
                if self.net.gate[nxt as usize] == Gate::Signal
                    && let Some((c2, _)) = walk.hop(hop + 1)
                    && !ctx.signals.connection_allowed(c2 - nl, ctx.time_s)
                {
                    let d = dist + self.net.hold_s[nxt as usize];
                    stop_at(d, false, &mut a, &mut a_obst, &mut max_adv);
                }
            }
            dist += nxt_len_m;
        }
        // Stop clear of connections being driven through whose sweep reaches this lane's end.
        if piece < nl {
            for &(c2, safe_car, safe_long) in &self.net.intrusions[piece as usize] {
                let safe_s = if p.length_m > 5.0 { safe_long } else { safe_car };
                let through = next_conn.is_some_and(|c| v.held.iter().any(|h| h.0 == c));
                if Some(c2) == next_conn || through || v.s_m > safe_s + 0.05 {
                    continue;
                }
                // Claimed connections are kept clear too (see CLAIM_AFTER_S), unless a
                // deadlock resolution lets this vehicle ignore claims.
                let claimant = self.claims[c2 as usize].0;
                let ignore_claims = ctx.time_s < v.ignore_yield_until_s;
                let holder = self.occupants[c2 as usize]
                    .iter()
                    .find(|x| x.0 != slot)
                    .map(|x| x.0)
                    .or((!ignore_claims && claimant != NONE && claimant != slot).then_some(claimant));
                if let Some(o) = holder {
                    let d = safe_s - v.s_m;
                    if v_now * v_now / (2.0 * d.max(0.01)) <= 6.0 {
                        let a_before = a;
                        stop_at(d, true, &mut a, &mut a_obst, &mut max_adv);
                        if a < a_before {
                            why = Wait::Conflict;
                            blocked_by = o;
                        }
                    }
                }
            }
        }
        // The gate at the end of the current lane.
        let mut amber_go = v.amber_go;
        let mut stopped_at_line = v.stopped_at_line;
        let mut wait_end = false;
        let mut grant: Vec<(u32, f64)> = Vec::new();
        let mut revoke: Option<u32> = None;
        let mut reroute_now = false;
        // Zones granted with the junction, and zones of the junction's set the vehicle stops
        // before while it has no reservation.
        let mut zgrant_j: Vec<(u32, u8, f64, f64)> = Vec::new();
        let mut zstop: Vec<(u32, f64)> = Vec::new();
        let mut junction_pending = false;
        // The connections to claim, for a starved first vehicle at its hold point.
        let mut claim_chain: Option<Vec<u32>> = None;
        let mut kept_on_green = false;
        // Holders this vehicle passes with its new reservation (see `Vehicle::stay_for_id`).
        let mut passed: Vec<(u32, u32)> = Vec::new();
        if piece < nl {
            let hold = self.net.hold_s[piece as usize];
            let d_end = plen - v.s_m;
            // A vehicle waits clear of the sweeps of other lanes' connections (a bus cutting
            // its corner), unless it is already in them.
            let mut hold_w = hold;
            for &(c2, safe_car, safe_long) in &self.net.intrusions[piece as usize] {
                let safe_s = if p.length_m > 5.0 { safe_long } else { safe_car };
                if Some(c2) != next_conn && v.s_m <= safe_s + 0.3 {
                    hold_w = hold_w.min(safe_s);
                }
            }
            let d_hold = if v.s_m <= hold_w + 0.3 {
                hold_w - v.s_m
            } else if v.s_m <= hold + 0.3 {
                hold - v.s_m
            } else {
                d_end - 0.1
            };
            let last_group = v.route_idx + 1 >= v.route.len();
            match next_conn {
                None if last_group => {}
                None => {
                    // Not on a lane with the connection the route needs: wait at the hold
                    // point (the stop line), or at the end once past it.
                    let d_stop = if v.s_m <= hold + STOP_LINE_TOL_M { d_hold } else { d_end - 1.0 };
                    stop_at(d_stop, true, &mut a, &mut a_obst, &mut max_adv);
                    wait_end = d_stop < 3.0 && v.v_mps < 0.5;
                    if wait_end {
                        why = Wait::NoConnection;
                    }
                    // Too close for a lane change: take another way at once rather than
                    // stop with the rear in the junction behind.
                    reroute_now = d_stop < 14.0;
                }
                Some(c) => {
                    let held = v.held.iter().any(|h| h.0 == c);
                    let entered = d_end <= 0.0;
                    let mut go = true;
                    junction_pending = !held && !entered;
                    // Zones over the hold point are entered only with the junction: request
                    // it as far before the first of them as before the hold point.
                    let mut zone_reach = 0.0f64;
                    if junction_pending {
                        for (z, _, d0, _) in self.junction_zones(v, &[(c, d_end.max(0.0))]) {
                            if d0 < d_hold && v.zheld.iter().all(|h| h.0 != z) {
                                let can_stop = v.v_mps * v.v_mps / (2.0 * (d0 - 0.5).max(0.01)) <= 4.5;
                                if d0 > 0.0 && can_stop {
                                    zstop.push((z, d0));
                                    zone_reach = zone_reach.max(d_hold - d0);
                                }
                            }
                        }
                    }
                    // A vehicle that crossed the stop line with its way reserved (on green or
                    // amber) clears the junction whatever the signal shows now.
                    let past_line = v.s_m > hold + STOP_LINE_TOL_M;
                    if self.net.gate[piece as usize] == Gate::Signal && !entered && !(held && past_line) {
                        match ctx.signals.connection_state(c, ctx.time_s) {
                            Some(SignalState::Red) => {
                                go = false;
                                why = Wait::Red;
                                amber_go = false;
                            }
                            Some(SignalState::Amber) => {
                                if !amber_go && held {
                                    let rem = ctx.signals.connection_go_remaining_s(c, ctx.time_s);
                                    // A lane reserved through (too short to wait on clear of
                                    // foreign paths) is left, not stopped on.
                                    amber_go = d_end / v.v_mps.max(0.1) < rem - 0.2
                                        || self.net.clear_s[piece as usize] < p.length_m + p.s0_m;
                                }
                                if !amber_go {
                                    let can_stop = v.v_mps * v.v_mps / (2.0 * d_hold.max(0.01)) <= 3.0;
                                    let rem = ctx.signals.connection_go_remaining_s(c, ctx.time_s);
                                    let t_reach = d_end / v.v_mps.max(0.1);
                                    amber_go = !can_stop && t_reach < rem - 0.2;
                                }
                                go = amber_go;
                            }
                            _ => amber_go = false,
                        }
                    }
                    if self.net.gate[piece as usize] == Gate::Stop && !held {
                        if d_hold < 3.0 && v.v_mps < 0.2 {
                            stopped_at_line = true;
                        }
                        if !stopped_at_line {
                            go = false;
                            why = Wait::StopSign;
                        }
                    }
                    if !go && held && !entered {
                        revoke = Some(c);
                    }
                    let first = {
                        let list = &self.lists[piece as usize];
                        let i = list.partition_point(|e| (e.s, e.slot) <= (v.s_m, slot));
                        list[i..].iter().all(|e| e.ghost || e.slot == slot)
                    };
                    // A claimant whose last green ran out claims its chain again shortly
                    // before the next (see CLAIM_LEAD_S).
                    if why == Wait::Red
                        && first
                        && d_hold < 3.0
                        && v.v_mps < 0.5
                        && v.starved_lane == piece
                        && v.starved_chain.first() == Some(&c)
                        && ctx.time_s >= v.no_claim_until_s
                        && ctx.signals.connection_green_in_s(c, ctx.time_s) <= CLAIM_LEAD_S
                    {
                        claim_chain = Some(v.starved_chain.clone());
                    }
                    if go && !held {
                        let req_d = v.v_mps * v.v_mps / (2.0 * p.b_mps2) + 20.0 + zone_reach;
                        if first && d_hold < req_d && ctx.time_s < v.no_grant_until_s {
                            go = false;
                            why = Wait::Conflict;
                        } else if first && d_hold < req_d {
                            // A lane too short to hold the vehicle clear of the connection
                            // it enters by is crossed without stopping: reserve through it.
                            let mut chain = vec![(c, d_end.max(0.0))];
                            let mut res = Ok(());
                            let (mut lk, mut rk) = (self.net.conn_to[c as usize], v.route_idx + 1);
                            let mut dk = d_end.max(0.0) + self.net.len[(nl + c) as usize];
                            let mut c_prev = c;
                            while self.net.clear_s[lk as usize].min(self.net.hold_s[lk as usize])
                                - self.net.zone_tail_m(c_prev)
                                < p.length_m + p.s0_m
                                && chain.len() < 6
                            {
                                let Some(c2) = self.planned_conn(v, lk, rk) else { break };
                                // Vehicles ahead on the chain that have not yet got their way
                                // out of the short lane go first.
                                let ahead = [lk, nl + c_prev].into_iter().find_map(|pc| {
                                    self.lists[pc as usize].iter().find(|e| {
                                        e.slot != slot
                                            && !e.ghost
                                            && self.vehicles[e.slot as usize]
                                                .held
                                                .iter()
                                                .all(|h| self.net.conn_from[h.0 as usize] != lk)
                                    })
                                });
                                if let Some(e) = ahead {
                                    res = Err((e.slot, Wait::NotFirst));
                                    break;
                                }
                                if self.net.gate[lk as usize] == Gate::Signal {
                                    let x = dk + self.net.len[lk as usize];
                                    // After a long wait, any green will do: the driver squeezes
                                    // in, and may have to stop on the short lane with the rear
                                    // over the junction behind (its reservation keeps that clear).
                                    let t_reach = if v.stopped_s > SQUEEZE_AFTER_S {
                                        0.0
                                    } else {
                                        (2.0 * x / p.a_mps2).sqrt().min(x / v.v_mps.max(0.1)) + 2.0
                                    };
                                    if !ctx.signals.connection_allowed(c2, ctx.time_s)
                                        || ctx.signals.connection_go_remaining_s(c2, ctx.time_s) < t_reach
                                    {
                                        // After a longer wait (the two signals' greens may
                                        // never overlap), it enters on its own green and
                                        // waits at the short lane's stop line: the chain
                                        // ends there.
                                        if v.stopped_s > BLOCK_AFTER_S {
                                            break;
                                        }
                                        res = Err((NONE, Wait::Red));
                                        break;
                                    }
                                }
                                c_prev = c2;
                                dk += self.net.len[lk as usize];
                                chain.push((c2, dk));
                                dk += self.net.len[(nl + c2) as usize];
                                lk = self.net.conn_to[c2 as usize];
                                rk += 1;
                            }
                            if res.is_ok() {
                                for &(ck, dck) in &chain {
                                    if v.held.iter().any(|h| h.0 == ck) {
                                        continue;
                                    }
                                    res = self.grant_blocker(slot, ck, dck, &mut passed);
                                    if res.is_err() {
                                        break;
                                    }
                                }
                            }
                            if res.is_ok() {
                                for zj in self.junction_zones(v, &chain) {
                                    if v.zheld.iter().any(|h| h.0 == zj.0) {
                                        continue;
                                    }
                                    if zj.2 > 0.0 {
                                        res = self.zone_blocker(slot, zj.0, zj.1, zj.2, leader);
                                        if res.is_err() {
                                            break;
                                        }
                                    }
                                    zgrant_j.push(zj);
                                }
                            }
                            if res.is_err() {
                                zgrant_j.clear();
                                passed.clear();
                            }
                            match res {
                                Ok(()) => {
                                    grant = chain
                                        .iter()
                                        .filter(|(ck, _)| v.held.iter().all(|h| h.0 != *ck))
                                        .map(|&(ck, dck)| (ck, v.odo_m + dck))
                                        .collect()
                                }
                                Err((b, w)) => {
                                    why = w;
                                    go = false;
                                    if b != NONE {
                                        blocked_by = b;
                                    }
                                    let kept = b != NONE
                                        && matches!(
                                            w,
                                            Wait::Conflict
                                                | Wait::Priority
                                                | Wait::Zone
                                                | Wait::NotFirst
                                                | Wait::ExitRoom
                                                | Wait::ExitReserved
                                        )
                                        && d_hold < 3.0
                                        && v.v_mps < 0.5;
                                    let on_green = self.net.gate[piece as usize] == Gate::Signal
                                        && ctx.signals.connection_state(c, ctx.time_s) == Some(SignalState::Green);
                                    kept_on_green = kept && on_green;
                                    if kept
                                        && (v.stopped_s > CLAIM_AFTER_S
                                            || (on_green && v.green_kept_s >= CLAIM_GREEN_S))
                                        && ctx.time_s >= v.no_claim_until_s
                                    {
                                        claim_chain = Some(chain.iter().map(|x| x.0).collect());
                                    }
                                }
                            }
                        } else {
                            go = false;
                            if why == Wait::None {
                                why = Wait::NotFirst;
                            }
                        }
                    }
                    if !go && !entered {
                        let a_before = a;
                        stop_at(d_hold, true, &mut a, &mut a_obst, &mut max_adv);
                        for &(_, d0) in &zstop {
                            stop_at(d0 - 0.5, true, &mut a, &mut a_obst, &mut max_adv);
                        }
                        if a < a_before && blocked_by == NONE {
                            blocked_by = NONE;
                        }
                    }
                }
            }
        }
        // Overlap zones with lanes of other roads, on this lane and the next one.
        let mut zgrant: Vec<(u32, u8, f64, f64)> = Vec::new();
        let mut zrevoke: Vec<u32> = Vec::new();
        {
            let v = &self.vehicles[slot as usize];
            let looks: [(u32, f64); 3] = if piece < nl {
                match next_conn {
                    // Without its reservation, a vehicle takes no zone beyond its hold point:
                    // those come with the reservation.
                    Some(_) if junction_pending && zgrant_j.is_empty() && grant.is_empty() => {
                        [(piece, -v.s_m), (NONE, 0.0), (NONE, 0.0)]
                    }
                    Some(c) => [
                        (piece, -v.s_m),
                        (nl + c, plen - v.s_m),
                        (self.net.conn_to[c as usize], plen - v.s_m + self.net.len[(nl + c) as usize]),
                    ],
                    None => [(piece, -v.s_m), (NONE, 0.0), (NONE, 0.0)],
                }
            } else {
                [(piece, -v.s_m), (self.net.conn_to[(piece - nl) as usize], plen - v.s_m), (NONE, 0.0)]
            };
            let req_d = v.v_mps * v.v_mps / (2.0 * p.b_mps2) + 20.0;
            for &(pc, off) in &looks {
                if pc == NONE {
                    continue;
                }
                for &(z, side) in &self.net.lane_zones[pc as usize] {
                    if zstop.iter().any(|zs| zs.0 == z) || zgrant_j.iter().any(|zj| zj.0 == z) {
                        continue;
                    }
                    let (_, s0, s1) = self.net.zones[z as usize][side as usize];
                    let d = off + s0;
                    if v.zheld.iter().any(|h| h.0 == z) {
                        // A vehicle standing before the zone for another reason lets it go.
                        if d > 2.0 && v.v_mps < 0.5 {
                            zrevoke.push(z);
                        }
                        continue;
                    }
                    if off + s1 + p.length_m < 0.0 || d > req_d {
                        continue;
                    }
                    let rel = v.odo_m + off + s1 + p.length_m + 0.3;
                    let entry = v.odo_m + d;
                    let paused = if ctx.time_s < v.no_grant_until_s { Err((NONE, Wait::Zone)) } else { Ok(()) };
                    match paused.and_then(|()| self.zone_blocker(slot, z, side, d, leader)) {
                        Ok(()) => zgrant.push((z, side, entry, rel)),
                        Err(_) if d <= 0.0 => zgrant.push((z, side, entry, rel)),
                        Err((b, w)) => {
                            let a_before = a;
                            stop_at(d, true, &mut a, &mut a_obst, &mut max_adv);
                            if a < a_before {
                                why = w;
                                blocked_by = b;
                            }
                        }
                    }
                }
            }
        }
        // Pedestrians in the path ahead (walking along a street without sidewalks, or
        // crossing where there is no crossing): stop short of them.
        // One on the vehicle's course is waited for; one beside it is passed at walking pace.
        if let Some((d, lateral)) = self.pedestrian_ahead(slot, ctx.pedestrians) {
            let a_before = a;
            if lateral < self.guard_boxes[slot as usize].0.half[1] + PED_PATH_MARGIN_M {
                stop_at(d - PED_GAP_M, d < PED_GAP_M + 1.0, &mut a, &mut a_obst, &mut max_adv);
            } else if v_now > PED_PASS_MPS {
                let need = (v_now * v_now - PED_PASS_MPS * PED_PASS_MPS) / (2.0 * (d - PED_GAP_M).max(1.0));
                a = a.min(-need);
                a_obst = a_obst.min(-need);
            }
            if a < a_before {
                why = Wait::Pedestrian;
                blocked_by = NONE;
            }
        }
        // Agents driven from outside (robots) on the path ahead: brake to stop short of them.
        if !self.external.is_empty() {
            let v = &self.vehicles[slot as usize];
            let (cur, z) = self.guard_boxes[slot as usize];
            let reach = v.v_mps * v.v_mps / (2.0 * p.b_mps2) + 6.0;
            let near = self.external.iter().any(|(eb, ez, _)| {
                (ez - z).abs() < crate::metrics::LEVEL_SEPARATION_M
                    && (eb.c[0] - cur.c[0]).powi(2) + (eb.c[1] - cur.c[1]).powi(2)
                        < (reach + cur.radius + eb.radius).powi(2)
            });
            if near {
                let mut d = 0.5;
                while d <= reach {
                    let Some((pc, sc, prev)) = self.ahead_on_route(v, d) else { break };
                    let (f, r) = self.pose_at(v, pc, sc, prev, 0.0);
                    let b = body_box_of(f, r, &v.p, v.heading_rad);
                    if self.external.iter().any(|(eb, _, _)| b.depth(eb) > -0.3 && cur.depth(eb) <= 0.0) {
                        let a_before = a;
                        stop_at(d - 1.0, false, &mut a, &mut a_obst, &mut max_adv);
                        if a < a_before {
                            why = Wait::Clearance;
                            blocked_by = NONE;
                        }
                        break;
                    }
                    d += 1.0;
                }
            }
        }
        // Clearance guard: no step that would put the body into another vehicle's (as they
        // stand at the step's start), whatever the rules above allowed.
        let mut hold_lat = false;
        {
            let v = &self.vehicles[slot as usize];
            let a_c = a.clamp(-B_MAX_MPS2, p.a_mps2);
            let v_new = (v.v_mps + a_c * DT_S).max(0.0);
            let ds = ((v.v_mps + v_new) * 0.5 * DT_S).min(max_adv);
            let check = if (ds > 1e-3 || v.lat_m != 0.0) && !self.isolated(slot) {
                // Where the step ends, and a margin beyond it (on a curve the box turns
                // between the two, so both are checked).
                match self.guard_blocker(slot, ds.max(0.0) + GUARD_MARGIN_M).ok() {
                    Some((None, pred)) if ds > 1e-3 && turns(&self.guard_boxes[slot as usize].0, &pred) => {
                        match self.guard_blocker(slot, ds.max(0.0)).ok() {
                            Some((Some(o), b)) => Some((Some(o), b)),
                            _ => Some((None, pred)),
                        }
                    }
                    other => other,
                }
            } else {
                None
            };
            if let Some((None, pred)) = check {
                self.guard_next[slot as usize] = Some(pred);
            }
            if let Some((Some(o), _)) = check {
                hold_lat = true;
                a = a.min(-v.v_mps / DT_S).max(-B_MAX_MPS2.max(v.v_mps / DT_S));
                max_adv = 0.0;
                why = Wait::Clearance;
                blocked_by = o;
            }
        }
        let v = &mut self.vehicles[slot as usize];
        if stay_over {
            v.stay_conn = NONE;
        }
        v.hold_lat = hold_lat;
        v.a_mps2 = a.clamp(-B_MAX_MPS2, p.a_mps2);
        v.a_obst = a_obst;
        v.max_adv_m = max_adv;
        v.blocked_by = blocked_by;
        v.why = why;
        v.amber_go = amber_go;
        v.stopped_at_line = stopped_at_line;
        if wait_end {
            v.wait_end_s += DT_S;
        } else {
            v.wait_end_s = 0.0;
        }
        if let Some(c) = revoke {
            // The chain granted with it goes too, and the zones taken with it beyond this
            // lane: a vehicle waiting at a red light holds no way through the junctions
            // ahead (it held one through a whole red phase, starving the turns it crosses).
            let v = &self.vehicles[slot as usize];
            let lane_end_odo = v.odo_m + self.net.len[v.piece as usize] - v.s_m;
            let chain: Vec<u32> = v.held.iter().filter(|h| h.0 == c || v.odo_m < h.1).map(|h| h.0).collect();
            let zones: Vec<u32> = v.zheld.iter().filter(|h| h.1 > lane_end_odo).map(|h| h.0).collect();
            for c in chain {
                self.release(slot, c);
            }
            for z in zones {
                self.zone_release(slot, z);
            }
        }
        for (c, odo) in grant {
            self.occupants[c as usize].push((slot, odo));
            self.vehicles[slot as usize].held.push((c, odo));
        }
        let id = self.vehicles[slot as usize].id;
        for (o, c) in passed {
            if self.vehicles[slot as usize].held.iter().any(|h| h.0 == c) {
                let ov = &mut self.vehicles[o as usize];
                (ov.stay_for, ov.stay_for_id, ov.stay_conn, ov.stay_until_s) = (slot, id, c, ctx.time_s + STAY_MAX_S);
            }
        }
        for z in zrevoke {
            self.zone_release(slot, z);
        }
        for (z, side, entry, rel) in zgrant {
            self.zone_occ[z as usize].push((slot, side));
            self.vehicles[slot as usize].zheld.push((z, entry, rel));
        }
        let odo = self.vehicles[slot as usize].odo_m;
        let len_m = self.vehicles[slot as usize].p.length_m;
        for (z, side, d0, d1) in zgrant_j {
            self.zone_occ[z as usize].push((slot, side));
            self.vehicles[slot as usize].zheld.push((z, odo + d0, odo + d1 + len_m + 0.3));
        }
        if reroute_now || self.vehicles[slot as usize].wait_end_s > 15.0 {
            self.reroute_here(twin, slot, None);
        } else if let Some(c) = next_conn
            && piece < nl
        {
            // A vehicle kept at the hold point by a stopped queue on its exit (or by a
            // short lane beyond that never clears for it) takes another way out, if the
            // lane has one with room.
            let v = &self.vehicles[slot as usize];
            let chain_wait = matches!(v.why, Wait::NotFirst)
                || (v.why == Wait::Red && self.net.gate[piece as usize] != Gate::Signal);
            // One starved by a stream it must cross or yield to gives up and turns
            // elsewhere, as a driver would after a long wait.
            let starved = v.stopped_s > REROUTE_STARVED_S && matches!(v.why, Wait::Conflict | Wait::Priority);
            if v.stopped_s > REROUTE_BLOCKED_S
                && (matches!(v.why, Wait::ExitRoom | Wait::ExitReserved) || chain_wait || starved)
                && v.held.is_empty()
                && plen - v.s_m < 3.0 + (plen - self.net.hold_s[piece as usize])
            {
                self.reroute_here(twin, slot, Some(c));
            }
        }
        {
            let v = &mut self.vehicles[slot as usize];
            if kept_on_green {
                v.green_kept_s += DT_S;
            } else if v.v_mps >= 0.5 {
                v.green_kept_s = 0.0;
            }
        }
        // Claims, unless a re-route just chose another way.
        self.drop_claims(slot);
        if self.vehicles[slot as usize].starved_lane != self.vehicles[slot as usize].piece {
            let v = &mut self.vehicles[slot as usize];
            v.starved_lane = NONE;
            v.starved_chain.clear();
        }
        if let Some(chain) = claim_chain {
            let v = &self.vehicles[slot as usize];
            let key = (slot, ctx.time_s - v.stopped_s, v.id);
            if v.piece == piece && self.planned_conn(v, piece, v.route_idx) == chain.first().copied() {
                if piece < nl && self.net.gate[piece as usize] == Gate::Signal {
                    let v = &mut self.vehicles[slot as usize];
                    v.starved_lane = piece;
                    v.starved_chain.clone_from(&chain);
                }
                for c in chain {
                    if self.claims[c as usize].0 == NONE {
                        self.claims[c as usize] = key;
                        self.vehicles[slot as usize].claimed.push(c);
                    }
                }
            }
        }
    }

    /// Re-plans from the current lane, taking any connection out of it.
    fn reroute_here(&mut self, twin: &Twin, slot: u32, avoid: Option<u32>) {
        let v = &self.vehicles[slot as usize];
        let lane = v.piece;
        let dest = v.route.last().copied();
        let outs = &self.net.lane_out[lane as usize];
        if outs.is_empty() {
            // A dead end (reached by a lane change or a spawn): leave the district here.
            let g_here = self.net.group_of[lane as usize];
            let v = &mut self.vehicles[slot as usize];
            v.set_route(vec![g_here]);
            v.dest_s_m = None;
            v.wait_end_s = 0.0;
            return;
        }
        // A long vehicle takes no turn-back unless it is the only way out.
        let long = is_long(v.p.length_m);
        let fits: Vec<u32> = outs.iter().copied().filter(|&c| !long || !self.net.turn_back[c as usize]).collect();
        let outs = if fits.is_empty() { outs } else { &fits };
        let c = match avoid {
            None => outs[(v.id as usize) % outs.len()],
            Some(a) => {
                // The other way out with the most room on its exit lane.
                let room = |c: u32| {
                    let to = self.net.conn_to[c as usize];
                    match self.lists[to as usize].first() {
                        Some(e) => e.s - self.vehicles[e.slot as usize].p.length_m,
                        None => self.net.len[to as usize],
                    }
                };
                let best = outs
                    .iter()
                    .copied()
                    .filter(|&c| {
                        let g = |c: u32| self.net.group_of[self.net.conn_to[c as usize] as usize];
                        g(c) != g(a) && self.occupants[c as usize].is_empty()
                    })
                    .map(|c| (room(c), c))
                    .filter(|(r, c)| *r >= self.net.zone_tail_m(*c) + v.p.length_m + v.p.s0_m + 5.0)
                    .max_by(|x, y| x.0.total_cmp(&y.0).then(y.1.cmp(&x.1)));
                match best {
                    Some((_, c)) => c,
                    None => return,
                }
            }
        };
        let g_next = self.net.group_of[self.net.conn_to[c as usize] as usize];
        let g_here = self.net.group_of[lane as usize];
        let tail =
            self.net.route(g_next, dest, &self.sink_group, &self.route_cost_s, long).unwrap_or_else(|| vec![g_next]);
        let mut route = vec![g_here];
        route.extend(tail);
        let dest_keep = if route.last() == dest.as_ref() { self.vehicles[slot as usize].dest_s_m } else { None };
        let _ = twin;
        let v = &mut self.vehicles[slot as usize];
        v.set_route(route);
        v.dest_s_m = dest_keep;
        v.wait_end_s = 0.0;
    }

    /// The length the vehicles on `lane` (`slot` excepted) take when queued: bodies plus
    /// standstill gaps (m).
    fn queued_m(&self, lane: u32, slot: u32) -> f64 {
        self.lists[lane as usize]
            .iter()
            .filter(|e| !e.ghost && e.slot != slot)
            .map(|e| {
                let o = &self.vehicles[e.slot as usize];
                o.p.length_m + o.p.s0_m
            })
            .sum()
    }

    /// Whether a vehicle claiming a connection into `lane` (starved at its hold point, most
    /// often by the queue on `lane`) needs the room that `slot` would take by changing onto
    /// `lane`: the claimant gets the queue's last room first, or vehicles changing in from
    /// the next lane fill every gap the signal beyond opens, and it waits for good.
    fn room_claimed(&self, slot: u32, lane: u32) -> bool {
        let mut need = f64::NEG_INFINITY;
        for &c in &self.net.lane_in[lane as usize] {
            let w = self.claims[c as usize].0;
            if w != NONE && w != slot {
                let wv = &self.vehicles[w as usize];
                need = need.max(self.net.zone_tail_m(c) + wv.p.length_m + wv.p.s0_m);
            }
        }
        if need == f64::NEG_INFINITY {
            return false;
        }
        let l = lane as usize;
        let queued = self.queued_m(lane, slot);
        let v = &self.vehicles[slot as usize];
        self.net.clear_s[l].min(self.net.hold_s[l]) - queued - (v.p.length_m + v.p.s0_m) < need
    }

    fn lane_change(&mut self, twin: &Twin, slot: u32) {
        let v = &self.vehicles[slot as usize];
        if v.ghost_lane != NONE || v.lc_cooldown_s > 0.0 || !v.held.is_empty() || v.s_m < 3.0 {
            return;
        }
        let lane = v.piece;
        let len = self.net.len[lane as usize];
        let rem = len - v.s_m;
        if rem < 12.0 {
            return;
        }
        let last_group = v.route_idx + 1 >= v.route.len();
        let next_g = v.route.get(v.route_idx + 1).copied();
        let long = is_long(v.p.length_m);
        let good = |l: u32| -> bool { next_g.is_none_or(|g| self.net.conn_to_group(l, g, long).is_some()) };
        let here_good = good(lane);
        let idx = twin.lanes[lane as usize].index_from_right;
        // The nearest good lane in the group, for mandatory changes.
        let target_dir: i32 = if here_good || last_group {
            0
        } else {
            let g = &self.net.groups[self.net.group_of[lane as usize] as usize];
            let mut best: Option<(i32, i32)> = None;
            for &l in g {
                if good(l) {
                    let d = twin.lanes[l as usize].index_from_right as i32 - idx as i32;
                    if best.is_none_or(|b| d.abs() < b.0) {
                        best = Some((d.abs(), d.signum()));
                    }
                }
            }
            best.map(|b| b.1).unwrap_or(0)
        };
        let p = v.p;
        let v0 = self.net.vmax[lane as usize] * p.speed_factor;
        let mut best: Option<(f64, u32, f64)> = None;
        for (dir, nb) in [(1i32, twin.lanes[lane as usize].left), (-1i32, twin.lanes[lane as usize].right)] {
            let Some(nb) = nb else { continue };
            if nb as usize >= self.net.n_lanes {
                continue;
            }
            let mandatory = target_dir == dir;
            if !mandatory && (target_dir != 0 || v.v_mps < 1.0) {
                continue;
            }
            if !mandatory && !good(nb) && rem < 250.0 {
                continue;
            }
            if !mandatory && rem < 40.0 {
                continue;
            }
            let nlen = self.net.len[nb as usize];
            let s_n = v.s_m * nlen / len;
            // Not onto the target lane within braking distance (at 3 m/s²) + 3 m of its
            // hold point, nor past it: its stop line may show red where this lane's shows
            // green.
            if self.net.hold_s[nb as usize] - s_n < v.v_mps * v.v_mps / 6.0 + 3.0 {
                continue;
            }
            let near_zone = |l: u32, s: f64| {
                self.net.lane_zones[l as usize].iter().any(|&(z, side)| {
                    let (_, s0, s1) = self.net.zones[z as usize][side as usize];
                    s > s0 - 30.0 && s - p.length_m < s1 + 1.0
                })
            };
            if near_zone(nb, s_n) || near_zone(lane, v.s_m) {
                continue;
            }
            if s_n < p.length_m + 0.5 {
                continue;
            }
            if self.room_claimed(slot, nb) {
                continue;
            }
            let list = &self.lists[nb as usize];
            let i = list.partition_point(|e| e.s <= s_n);
            let lead = list[i..].iter().find(|e| e.slot != slot);
            let foll = list[..i].iter().rev().find(|e| e.slot != slot);
            let (gap_f, a_new) = match lead {
                Some(e) => {
                    let o = &self.vehicles[e.slot as usize];
                    let g = e.s - o.p.length_m - s_n;
                    (g, idm_accel(&p, v.v_mps, v0, g, v.v_mps - o.v_mps))
                }
                None => (f64::INFINITY, idm_free(&p, v.v_mps, v0)),
            };
            let a_new = a_new.min(v.a_obst);
            if gap_f < 1.0 + v.v_mps * 0.3 {
                continue;
            }
            let b_safe = if mandatory { 4.0 } else { 3.0 };
            let mut follower_gain = 0.0;
            if let Some(e) = foll {
                let o = &self.vehicles[e.slot as usize];
                let g = s_n - p.length_m - e.s;
                if g < 2.0 + o.v_mps * 0.3 {
                    continue;
                }
                let v0o = self.net.vmax[nb as usize] * o.p.speed_factor;
                let afn = idm_accel(&o.p, o.v_mps, v0o, g, o.v_mps - v.v_mps);
                if afn < -b_safe {
                    continue;
                }
                follower_gain = afn - o.a_mps2;
            }
            let incentive = a_new - v.a_mps2 + 0.2 * follower_gain;
            let score = if mandatory { 100.0 + incentive } else { incentive };
            if (mandatory || incentive > 0.1 + 0.1) && best.is_none_or(|b| score > b.0) {
                best = Some((score, nb, s_n));
            }
        }
        let Some((_, nb, s_n)) = best else { return };
        // The clearance guard: the body in the target lane must touch no one.
        {
            let v = &self.vehicles[slot as usize];
            let (f, r) = self.pose_at(v, nb, s_n, v.prev_piece, 0.0);
            if self.box_blocker(slot, body_box_of(f, r, &v.p, v.heading_rad), (f[2] + r[2]) / 2.0).is_some() {
                return;
            }
        }
        let old_w = twin.lanes[lane as usize].width_m;
        let new_w = twin.lanes[nb as usize].width_m;
        let to_left = twin.lanes[lane as usize].left == Some(nb);
        let v = &mut self.vehicles[slot as usize];
        v.lat_m += if to_left { -(old_w + new_w) / 2.0 } else { (old_w + new_w) / 2.0 };
        v.lat0_m = v.lat_m;
        v.ghost_lane = lane;
        v.piece = nb;
        v.s_m = s_n;
        v.lc_cooldown_s = 4.0;
        v.stopped_at_line = false;
        v.amber_go = false;
        // Keep the lists valid for the other vehicles of this phase.
        let (id_slot, old_s) = (slot, s_n * len / self.net.len[nb as usize]);
        if let Some(e) = self.lists[lane as usize].iter_mut().find(|e| e.slot == id_slot && !e.ghost) {
            e.ghost = true;
            e.s = old_s;
        }
        let (len_m, v_mps) = (self.vehicles[slot as usize].p.length_m, self.vehicles[slot as usize].v_mps);
        let list = &mut self.lists[nb as usize];
        if list.is_empty() {
            self.touched.push(nb);
        }
        let i = list.partition_point(|e| (e.s, e.slot) <= (s_n, slot));
        list.insert(i, Entry { s: s_n, slot, ghost: false, len_m, v_mps });
    }

    fn advance(&mut self, ctx: &StepCtx, slot: u32, events: &mut Vec<SimEvent>) {
        let nl = self.net.n_lanes as u32;
        self.updates += 1;
        let v = &mut self.vehicles[slot as usize];
        if v.reverse_for != NONE {
            // Backing away (see `plan_reverse`), or waiting backed away.
            let back = v.reverse_step_m;
            v.s_m -= back;
            v.odo_m -= back;
            if v.s_m < 0.0 && v.piece >= nl && v.prev_piece < nl {
                // Out of the connection, back onto its approach lane (its reservation
                // kept: it is ahead again).
                v.piece = v.prev_piece;
                v.s_m += self.net.len[v.piece as usize];
                v.prev_piece = v.history[0];
                v.history = [v.history[1], v.history[2], NONE];
            }
            v.reverse_left_m -= back;
            v.v_mps = 0.0;
            v.stopped_s = if back > 0.0 { 0.0 } else { v.stopped_s + DT_S };
            return;
        }
        let v_new = (v.v_mps + v.a_mps2 * DT_S).max(0.0);
        let mut ds = if v.a_mps2 < 0.0 && v_new == 0.0 {
            // Stops within the step.
            v.v_mps * v.v_mps / (2.0 * -v.a_mps2)
        } else {
            (v.v_mps + v_new) * 0.5 * DT_S
        };
        let mut v_new = v_new;
        if ds > v.max_adv_m {
            ds = v.max_adv_m.max(0.0);
            v_new = v_new.min(ds / DT_S * 2.0).min(v.v_mps);
        }
        v.a_mps2 = (v_new - v.v_mps) / DT_S;
        v.v_mps = v_new;
        v.odo_m += ds;
        let s_before = v.s_m;
        v.s_m += ds;
        v.stopped_s = if v_new < 0.1 { v.stopped_s + DT_S } else { 0.0 };
        // Crossing a signal's stop line (the lane's hold point) on red.
        if v.piece < nl && self.net.gate[v.piece as usize] == Gate::Signal {
            let hold = self.net.hold_s[v.piece as usize];
            if s_before <= hold + STOP_LINE_TOL_M && v.s_m > hold + STOP_LINE_TOL_M {
                let v = &self.vehicles[slot as usize];
                if let Some(c) = self.planned_conn(v, v.piece, v.route_idx)
                    && ctx.signals.connection_state(c, ctx.time_s) == Some(SignalState::Red)
                {
                    events.push(SimEvent::RedLightViolation { agent_id: v.id, step: ctx.step, lane: v.piece });
                }
            }
        }
        let v = &mut self.vehicles[slot as usize];
        v.lc_cooldown_s = (v.lc_cooldown_s - DT_S).max(0.0);
        if v.lat_m != 0.0 && !v.hold_lat {
            v.lat_m = lat_after_step(v.lat_m);
            if v.lat_m.abs() < 0.2 {
                v.ghost_lane = NONE;
            }
        }
        // Destination at mid-lane.
        if let Some(ds_m) = v.dest_s_m
            && v.route_idx + 1 >= v.route.len()
            && v.piece < nl
            && v.s_m >= ds_m
        {
            self.despawn(slot, ctx.step, ctx.time_s, events);
            return;
        }
        // Piece transitions.
        loop {
            let v = &self.vehicles[slot as usize];
            let plen = self.net.len[v.piece as usize];
            if v.s_m < plen {
                break;
            }
            let over = v.s_m - plen;
            if v.piece < nl {
                let lane = v.piece;
                let c = self.planned_conn(v, lane, v.route_idx);
                let held = c.filter(|c| v.held.iter().any(|h| h.0 == *c));
                match held {
                    Some(c) => {
                        let v = &self.vehicles[slot as usize];
                        if v.lane_entered_s.is_finite() {
                            // A departure: the time it took to drive its lane group.
                            let g = self.net.group_of[lane as usize] as usize;
                            let tt = ctx.time_s - v.lane_entered_s;
                            self.group_tt_s[g] += TT_WEIGHT * (tt - self.group_tt_s[g]);
                        }
                        let v = &mut self.vehicles[slot as usize];
                        v.history = [v.prev_piece, v.history[0], v.history[1]];
                        v.prev_piece = v.piece;
                        v.piece = nl + c;
                        v.s_m = over;
                        v.ghost_lane = NONE;
                        v.lat_m = 0.0;
                        v.amber_go = false;
                        v.stopped_at_line = false;
                    }
                    None if self.net.lane_out[lane as usize].is_empty() || v.route_idx + 1 >= v.route.len() => {
                        self.despawn(slot, ctx.step, ctx.time_s, events);
                        return;
                    }
                    None => {
                        let v = &mut self.vehicles[slot as usize];
                        v.s_m = plen;
                        v.v_mps = 0.0;
                        break;
                    }
                }
            } else {
                let c = v.piece - nl;
                let to = self.net.conn_to[c as usize];
                let v = &mut self.vehicles[slot as usize];
                v.history = [v.prev_piece, v.history[0], v.history[1]];
                v.prev_piece = v.piece;
                v.piece = to;
                v.s_m = over;
                v.lane_entered_s = ctx.time_s;
                if v.route.get(v.route_idx + 1) == Some(&self.net.group_of[to as usize]) {
                    v.route_idx += 1;
                } else {
                    let g = self.net.group_of[to as usize];
                    v.set_route(vec![g]);
                    self.reroute_from_group(slot);
                }
            }
        }
        // Release cleared zones and reservations.
        let v = &self.vehicles[slot as usize];
        if !v.zheld.is_empty() {
            let done: Vec<u32> = v.zheld.iter().filter(|h| v.odo_m >= h.2).map(|h| h.0).collect();
            for z in done {
                self.zone_release(slot, z);
            }
        }
        let v = &self.vehicles[slot as usize];
        if !v.held.is_empty() {
            let mut done: Vec<u32> = Vec::new();
            for &(c, entry) in &v.held {
                if v.odo_m - v.p.length_m - entry >= self.net.release_m[c as usize] {
                    done.push(c);
                }
            }
            for c in done {
                self.release(slot, c);
            }
        }
        let v = &mut self.vehicles[slot as usize];
        if v.piece >= nl && v.held.iter().all(|h| h.0 != v.piece - nl) {
            // Defensive: a vehicle on a connection always holds it.
            let c = v.piece - nl;
            let entry = v.odo_m - v.s_m;
            v.held.push((c, entry));
            self.occupants[c as usize].push((slot, entry));
        }
    }

    fn reroute_from_group(&mut self, slot: u32) {
        let g = self.vehicles[slot as usize].route[0];
        let long = is_long(self.vehicles[slot as usize].p.length_m);
        let r = self.net.route(g, None, &self.sink_group, &self.route_cost_s, long).unwrap_or_else(|| vec![g]);
        let v = &mut self.vehicles[slot as usize];
        v.set_route(r);
        v.dest_s_m = None;
    }

    fn despawn(&mut self, slot: u32, step: u32, time_s: f64, events: &mut Vec<SimEvent>) {
        self.drop_claims(slot);
        let held: Vec<u32> = self.vehicles[slot as usize].held.iter().map(|h| h.0).collect();
        for c in held {
            self.release(slot, c);
        }
        let zones: Vec<u32> = self.vehicles[slot as usize].zheld.iter().map(|h| h.0).collect();
        for z in zones {
            self.zone_release(slot, z);
        }
        let v = &mut self.vehicles[slot as usize];
        v.alive = false;
        events.push(SimEvent::Arrived {
            agent_id: v.id,
            step,
            kind: v.kind,
            travel_time_s: time_s - v.spawn_time_s,
            distance_m: v.odo_m,
        });
        self.free_slots.push(slot);
        self.alive_count -= 1;
        // The slot's next vehicle must not inherit this one's pose.
        if let Some(c) = self.poses.get_mut(slot as usize) {
            *c = PoseCache::NONE;
        }
    }

    /// The plan of a vehicle backing away for `reverse_for` (see [`Wait::Reversing`]):
    /// it backs along its piece while that vehicle is still held by its body and the way
    /// back is clear, then waits until that vehicle has passed (or the hold expires). False
    /// when the manoeuvre is over (the vehicle plans as usual).
    fn plan_reverse(&mut self, ctx: &StepCtx, slot: u32) -> bool {
        let v = &self.vehicles[slot as usize];
        let other = v.reverse_for;
        let ov = &self.vehicles[other as usize];
        // Passed: clear of the path this vehicle drives on along (its body and 10 m more).
        let passed = !ov.alive || (ov.blocked_by != slot && !self.path_hits(slot, other, v.p.length_m + 10.0));
        if ctx.time_s >= v.reverse_until_s || passed {
            let v = &mut self.vehicles[slot as usize];
            v.reverse_for = NONE;
            v.reverse_mps = 0.0;
            return false;
        }
        let held = ov.blocked_by == slot && matches!(ov.why, Wait::Clearance | Wait::Conflict | Wait::Reversing);
        // Speed up to REVERSE_MPS, slow down to stop where the room ends.
        let left = v.reverse_left_m.min(self.reverse_limit_m(v));
        let target = if held { (2.0 * REVERSE_ACCEL_MPS2 * left.max(0.0)).sqrt().min(REVERSE_MPS) } else { 0.0 };
        let mut speed = target.min(v.reverse_mps + REVERSE_ACCEL_MPS2 * DT_S);
        if target < v.reverse_mps {
            speed = (v.reverse_mps - REVERSE_ACCEL_MPS2 * DT_S).max(target);
        }
        let back = (speed * DT_S).min(left.max(0.0));
        let mut step = 0.0;
        if back > 1e-4 {
            match self.reverse_box(slot, v.s_m - back) {
                Some(b) => {
                    step = back;
                    self.guard_next[slot as usize] = Some(b);
                }
                None => speed = 0.0,
            }
        } else {
            speed = 0.0;
        }
        if step == 0.0 && held && v.reverse_mps == 0.0 && (left < 0.01 || self.reverse_room(slot) < 0.25) {
            // Out of room with the other still held: the manoeuvre is over (the next
            // resolution lets another member back away).
            let v = &mut self.vehicles[slot as usize];
            v.reverse_for = NONE;
            return false;
        }
        let v = &mut self.vehicles[slot as usize];
        let speed_now = if step > 0.0 { speed } else { 0.0 };
        // Along the heading: backing faster is a negative acceleration.
        v.a_mps2 = -(speed_now - v.reverse_mps) / DT_S;
        v.reverse_step_m = step;
        v.reverse_mps = speed_now;
        v.max_adv_m = 0.0;
        v.a_obst = 0.0;
        v.why = Wait::Reversing;
        v.blocked_by = NONE;
        true
    }

    /// The body box of `slot` with its front at `s_m` on its piece, if that keeps
    /// [`REVERSE_MARGIN_M`] from every other body as it stands and where it goes this step
    /// (or comes no nearer to it than now).
    fn reverse_box(&self, slot: u32, s_m: f64) -> Option<GuardBox> {
        let v = &self.vehicles[slot as usize];
        if v.s_m - s_m > self.reverse_limit_m(v) + 1e-9 || v.lat_m != 0.0 {
            return None;
        }
        let (f, r) = if s_m >= 0.0 {
            self.pose_at(v, v.piece, s_m, v.prev_piece, 0.0)
        } else {
            // Back out of a connection onto its approach lane.
            let prev = v.prev_piece;
            self.pose_at(v, prev, self.net.len[prev as usize] + s_m, v.history[0], 0.0)
        };
        let b = body_box_of(f, r, &v.p, v.heading_rad);
        let z = (f[2] + r[2]) / 2.0;
        let (cur, _) = self.guard_boxes[slot as usize];
        // Within the margin of another body, and nearer to it than now.
        let blocks = |o: &GuardBox| {
            let d = b.depth(o);
            d > -REVERSE_MARGIN_M && d > cur.depth(o) + 1e-4
        };
        if self.box_in_way(slot, &b, z, REVERSE_MARGIN_M, blocks).is_some() {
            return None;
        }
        Some(b)
    }

    /// How far a vehicle may back at most (m): along its piece, and out of a connection
    /// onto its approach lane up to the lane's hold point (never behind a stop line).
    fn reverse_limit_m(&self, v: &Vehicle) -> f64 {
        let nl = self.net.n_lanes as u32;
        if v.piece >= nl && v.prev_piece < nl {
            let prev = v.prev_piece as usize;
            v.s_m + (self.net.len[prev] - self.net.hold_s[prev] - 0.05).max(0.0)
        } else {
            (v.s_m - 0.05).max(0.0)
        }
    }

    /// How far `slot` could back along its piece (m, at most [`REVERSE_MAX_M`]) with
    /// every body kept clear (see [`Self::reverse_box`]), in 0.25 m steps.
    fn reverse_room(&self, slot: u32) -> f64 {
        let v = &self.vehicles[slot as usize];
        let max = self.reverse_limit_m(v).min(REVERSE_MAX_M);
        let mut d = 0.0;
        while d + 0.25 <= max && self.reverse_box(slot, v.s_m - d - 0.25).is_some() {
            d += 0.25;
        }
        d
    }

    fn resolve_deadlocks(&mut self, ctx: &StepCtx, events: &mut Vec<SimEvent>) {
        let n = self.vehicles.len();
        let mut done = vec![false; n];
        let mut resolved = vec![false; n];
        for start in 0..n {
            let v = &self.vehicles[start];
            if !v.alive || v.stopped_s < 60.0 || done[start] {
                continue;
            }
            // Follow the wait-for chain.
            let mut chain: Vec<u32> = vec![start as u32];
            let mut cur = v.blocked_by;
            let mut cycle: Option<usize> = None;
            while cur != NONE && chain.len() < 64 {
                let cv = &self.vehicles[cur as usize];
                if !cv.alive {
                    break;
                }
                if let Some(pos) = chain.iter().position(|x| *x == cur) {
                    cycle = Some(pos);
                    break;
                }
                chain.push(cur);
                cur = cv.blocked_by;
            }
            for c in &chain {
                done[*c as usize] = true;
            }
            let Some(pos) = cycle else { continue };
            let members: Vec<u32> = chain[pos..].to_vec();
            // A cycle met again from another vehicle behind it, or one a member already
            // backs away from, is being resolved.
            if members.iter().any(|&m| resolved[m as usize] || self.vehicles[m as usize].reverse_for != NONE) {
                continue;
            }
            for &m in &members {
                resolved[m as usize] = true;
            }
            // Revoke a reservation not yet used, else let a yielding vehicle go first.
            let mut how = String::new();
            // (Skipped once the cycle has outlived them.)
            let escalate = members.iter().any(|&m| self.vehicles[m as usize].stopped_s >= DEADLOCK_ESCALATE_S);
            let mut revoked = false;
            let mut cands: Vec<u32> = if escalate { Vec::new() } else { members.clone() };
            cands.sort_by_key(|s| std::cmp::Reverse(self.vehicles[*s as usize].id));
            // Claims first: a claimant in a cycle waits for the others anyway.
            if !revoked && let Some(&m) = cands.iter().find(|&&m| !self.vehicles[m as usize].claimed.is_empty()) {
                self.drop_claims(m);
                self.vehicles[m as usize].no_claim_until_s = ctx.time_s + CLAIM_AFTER_S;
                how = format!("dropped the claims of vehicle {}", self.vehicles[m as usize].id);
                revoked = true;
            }
            for &m in &cands {
                if revoked {
                    break;
                }
                let mv = &self.vehicles[m as usize];
                let unused_zones: Vec<u32> = mv.zheld.iter().filter(|h| mv.odo_m < h.1).map(|h| h.0).collect();
                if !unused_zones.is_empty() {
                    for z in unused_zones {
                        self.zone_release(m, z);
                    }
                    self.vehicles[m as usize].no_grant_until_s = ctx.time_s + DEADLOCK_PAUSE_S;
                    how = format!("revoked the unused zones of vehicle {}", self.vehicles[m as usize].id);
                    revoked = true;
                    break;
                }
                let pending: Vec<u32> = mv.held.iter().filter(|h| mv.odo_m < h.1).map(|h| h.0).collect();
                // A reservation chain partly in use stays whole, unless its holder has
                // come to a stop at or before the hold point of its lane anyway.
                // A vehicle past its hold point keeps its way: without it, it would stand in
                // the junction's mouth, in the way of the paths it crosses.
                let before_hold =
                    (mv.piece as usize) < self.net.n_lanes && mv.s_m <= self.net.hold_s[mv.piece as usize] + 0.3;
                let stopped_at_hold = mv.v_mps < 0.05 && before_hold;
                if !pending.is_empty() && ((pending.len() == mv.held.len() && before_hold) || stopped_at_hold) {
                    for c in pending {
                        self.release(m, c);
                    }
                    self.vehicles[m as usize].no_grant_until_s = ctx.time_s + DEADLOCK_PAUSE_S;
                    how = format!("revoked the unused reservation of vehicle {}", self.vehicles[m as usize].id);
                    revoked = true;
                    break;
                }
            }
            if !revoked {
                // A lock of bodies (a member the clearance guard stops at another member's
                // body): that other member backs away, the one with the most room behind.
                // A member waiting for a conflict whose holder stands in its path is locked the
                // same way.
                // Backing away first from a member the guard stops (room lets it move on;
                // one waiting for a conflict still waits for its holder).
                let mut backers: Vec<(bool, f64, u64, u32, u32)> = members
                    .iter()
                    .filter_map(|&m| {
                        let mv = &self.vehicles[m as usize];
                        let b = mv.blocked_by;
                        let guard = mv.why == Wait::Clearance;
                        let locked = guard || (mv.why == Wait::Conflict && self.path_hits(m, b, mv.p.length_m + 15.0));
                        (locked && members.contains(&b)).then_some((!guard, b, m))
                    })
                    .map(|(rule, b, m)| (rule, self.reverse_room(b), self.vehicles[b as usize].id, b, m))
                    .filter(|x| x.1 >= 1.0)
                    .collect();
                backers.sort_by(|x, y| x.0.cmp(&y.0).then(y.1.total_cmp(&x.1)).then(x.2.cmp(&y.2)));
                backers.retain(|x| ctx.time_s - self.vehicles[x.3 as usize].reverse_began_s > REVERSE_AGAIN_S);
                if let Some(&(_, room, id, b, m)) = backers.first() {
                    let bv = &mut self.vehicles[b as usize];
                    bv.reverse_began_s = ctx.time_s;
                    bv.reverse_for = m;
                    bv.reverse_until_s = ctx.time_s + REVERSE_HOLD_S;
                    bv.reverse_left_m = room;
                    bv.reverse_mps = 0.0;
                    // The one it makes room for may pass holders standing clear of its path.
                    self.vehicles[m as usize].ignore_yield_until_s = ctx.time_s + REVERSE_HOLD_S;
                    how = format!("vehicle {id} backs away up to {room:.2} m");
                    revoked = true;
                }
            }
            if !revoked {
                // Members take turns, in id order, at successive resolutions of a cycle
                // that persists.
                let mut by_id = members.clone();
                by_id.sort_by_key(|s| self.vehicles[*s as usize].id);
                let m = by_id[(ctx.step as usize / 50) % by_id.len()];
                self.vehicles[m as usize].ignore_yield_until_s = ctx.time_s + IGNORE_YIELD_S;
                how = format!("vehicle {} proceeds ignoring priority", self.vehicles[m as usize].id);
            }
            let mut agents: Vec<u64> = members.iter().map(|s| self.vehicles[*s as usize].id).collect();
            agents.sort_unstable();
            tracing::debug!(step = ctx.step, ?agents, how = how.as_str(), "deadlock resolved");
            events.push(SimEvent::DeadlockResolved { step: ctx.step, agents, how });
        }
    }

    /// Tries to spawn one vehicle; true on success.
    pub fn try_spawn(
        &mut self,
        twin: &Twin,
        step: u32,
        time_s: f64,
        at_edge: bool,
        events: &mut Vec<SimEvent>,
    ) -> bool {
        let nl = self.net.n_lanes;
        if nl == 0 {
            return false;
        }
        let r = self.rng.next_f64();
        let kind = if r < 0.85 {
            AgentKind::Car
        } else if r < 0.90 {
            AgentKind::Bus
        } else {
            AgentKind::Truck
        };
        let mut p = Params::of(kind);
        p.speed_factor *= self.rng.range_f64(0.9, 1.05);
        p.speed_factor = p.speed_factor.min(1.0);
        let from_source = at_edge && !self.net.sources.is_empty();
        let u = self.rng.next_f64();
        let picked = if from_source {
            Net::pick_weighted(&self.net.source_cdf, u).map(|i| self.net.sources[i])
        } else {
            Net::pick_weighted(&self.net.lane_cdf, u).map(|i| i as u32)
        };
        let Some(lane) = picked else { return false };
        let len = self.net.len[lane as usize];
        if len < p.length_m + 4.0 {
            return false;
        }
        let s = if from_source {
            p.length_m + 0.5
        } else {
            self.rng.range_f64(p.length_m + 1.0, (self.net.hold_s[lane as usize] - 15.0).max(p.length_m + 1.0))
        };
        if s > len - 5.0 {
            return false;
        }
        for &(z, side) in &self.net.lane_zones[lane as usize] {
            let (_, s0, s1) = self.net.zones[z as usize][side as usize];
            if s > s0 - 30.0 && s - p.length_m < s1 + 1.0 {
                return false;
            }
        }
        // Destination.
        let to_sink = self.rng.chance(0.6) && !self.net.sinks.is_empty();
        let Some(dest_lane) = self.draw_lane(to_sink) else { return false };
        // Safe gaps.
        let v0 = self.net.vmax[lane as usize] * p.speed_factor;
        let list = &self.lists[lane as usize];
        let i = list.partition_point(|e| e.s <= s);
        let mut v_spawn = if from_source { 0.6 * v0 } else { 0.0 };
        if let Some(e) = list.get(i) {
            let o = &self.vehicles[e.slot as usize];
            let gap = e.s - o.p.length_m - s;
            if gap < p.s0_m + 8.0 {
                return false;
            }
            v_spawn = v_spawn.min(o.v_mps).min((gap - p.s0_m) / 2.0);
        }
        if i > 0 {
            let e = list[i - 1];
            let o = &self.vehicles[e.slot as usize];
            let gap = s - p.length_m - e.s;
            if gap < 8.0 + o.v_mps * 1.5 + o.v_mps * o.v_mps / 6.0 {
                return false;
            }
        }
        // No overlap with any vehicle nearby (of other roads and connections too).
        {
            let (f, _) = self.net.point_at(lane, s);
            let (r, _) = self.net.point_at(lane, s - p.length_m);
            let cand = OrientedBox {
                center: [(f[0] + r[0]) * 0.5, (f[1] + r[1]) * 0.5],
                heading_rad: (f[1] - r[1]).atan2(f[0] - r[0]),
                length_m: p.length_m + 4.0,
                width_m: p.width_m + 1.0,
            };
            let cand_radius_m = cand.bounding_radius_m();
            for (os, o) in self.vehicles.iter().enumerate().filter(|(_, o)| o.alive) {
                // Far from where it stood at the step's start (the guard's box; a vehicle
                // moves less than `NEAR_SLACK_M` in a step): no need for its pose now. Not
                // for one spawned in this step, whose slot's box is another's or none.
                if o.spawn_time_s != time_s
                    && let Some((gb, _)) = self.guard_boxes.get(os)
                {
                    let reach = cand_radius_m + gb.radius + NEAR_SLACK_M;
                    if (gb.c[0] - cand.center[0]).powi(2) + (gb.c[1] - cand.center[1]).powi(2) > reach * reach {
                        continue;
                    }
                }
                let (oc, oh) = self.center_heading(os);
                let ob = OrientedBox {
                    center: [oc[0], oc[1]],
                    heading_rad: oh,
                    length_m: o.p.length_m,
                    width_m: o.p.width_m,
                };
                let reach = cand.bounding_radius_m() + ob.bounding_radius_m();
                if (ob.center[0] - cand.center[0]).powi(2) + (ob.center[1] - cand.center[1]).powi(2) < reach * reach
                    && cand.overlap_depth_m(&ob) > 0.0
                {
                    return false;
                }
            }
            // Nor near an agent driven from outside (a robot): within the new vehicle's
            // comfortable braking distance (3 m/s²) + 8 m of its box, whatever the direction
            // (the robot may stand on the lane ahead, or be about to enter it).
            for (eb, _, _) in &self.external {
                let reach = cand_radius_m + eb.radius + v_spawn * v_spawn / 6.0 + 8.0;
                if (eb.c[0] - cand.center[0]).powi(2) + (eb.c[1] - cand.center[1]).powi(2) < reach * reach {
                    return false;
                }
            }
        }
        // Connections leaving this lane whose vehicles overhang it, or lanes merging in.
        for &c in &self.net.lane_in[lane as usize] {
            if !self.occupants[c as usize].is_empty() && s < 25.0 {
                return false;
            }
        }
        // The route last: the checks above draw no random numbers, and most failed spawns
        // fail them, so they cost no search.
        let g0 = self.net.group_of[lane as usize];
        let gd = self.net.group_of[dest_lane as usize];
        let route = if gd == g0 {
            vec![g0]
        } else {
            self.net
                .route(g0, Some(gd), &self.sink_group, &self.route_cost_s, is_long(p.length_m))
                .unwrap_or_else(|| vec![g0])
        };
        if route.len() == 1 && !self.sink_group[g0 as usize] {
            return false;
        }
        let dest_s_m = if route.len() > 1 && route.last() == Some(&gd) && !self.sink_group[gd as usize] {
            Some(self.net.len[dest_lane as usize] * 0.5)
        } else {
            None
        };
        let id = self.next_id;
        self.next_id += 1;
        let veh = Vehicle {
            id,
            kind,
            p,
            piece: lane,
            s_m: s,
            v_mps: v_spawn.max(0.0),
            a_mps2: 0.0,
            prev_piece: NONE,
            history: [NONE; 3],
            lat_m: 0.0,
            lat0_m: 0.0,
            ghost_lane: NONE,
            route,
            route_idx: 0,
            route_gen: 0,
            dest_s_m,
            held: Vec::new(),
            zheld: Vec::new(),
            amber_go: false,
            stopped_at_line: false,
            ignore_yield_until_s: 0.0,
            no_grant_until_s: 0.0,
            claimed: Vec::new(),
            starved_chain: Vec::new(),
            starved_lane: NONE,
            green_kept_s: 0.0,
            no_claim_until_s: 0.0,
            hold_lat: false,
            reverse_for: NONE,
            reverse_until_s: 0.0,
            reverse_left_m: 0.0,
            reverse_mps: 0.0,
            reverse_step_m: 0.0,
            reverse_began_s: f64::NEG_INFINITY,
            stay_for: NONE,
            stay_for_id: 0,
            stay_conn: NONE,
            stay_until_s: 0.0,
            odo_m: 0.0,
            spawn_time_s: time_s,
            lane_entered_s: f64::NAN,
            route_checked_s: 0.0,
            stopped_s: 0.0,
            wait_end_s: 0.0,
            lc_cooldown_s: 0.0,
            blocked_by: NONE,
            why: Wait::None,
            max_adv_m: 0.0,
            a_obst: 0.0,
            heading_rad: self.net.point_at(lane, s).1,
            alive: true,
        };
        let slot = match self.free_slots.pop() {
            Some(sl) => {
                self.vehicles[sl as usize] = veh;
                sl
            }
            None => {
                self.vehicles.push(veh);
                (self.vehicles.len() - 1) as u32
            }
        };
        let (len_m, v_mps) = (self.vehicles[slot as usize].p.length_m, self.vehicles[slot as usize].v_mps);
        let list = &mut self.lists[lane as usize];
        if list.is_empty() {
            self.touched.push(lane);
        }
        list.insert(i, Entry { s, slot, ghost: false, len_m, v_mps });
        self.alive_count += 1;
        events.push(SimEvent::Spawned { agent_id: id, step, kind });
        let _ = twin;
        true
    }

    /// Front and rear points of a vehicle (the rear trails along the path).
    fn pose(&self, v: &Vehicle) -> ([f64; 3], [f64; 3]) {
        self.pose_at(v, v.piece, v.s_m, v.prev_piece, v.lat_m)
    }

    /// The vehicle's front and rear points ([`VehicleSim::pose`]), centre and heading. A
    /// vehicle whose front and rear lie on one segment of its piece, with no lateral offset,
    /// has that segment's heading (no `atan2`: most moving vehicles, every step).
    fn pose_center_heading(&self, v: &Vehicle) -> ([f64; 3], [f64; 3], [f64; 3], f64) {
        let rear_s_m = v.s_m - v.p.length_m;
        if (v.lat_m == 0.0 || v.piece >= self.net.n_lanes as u32) && rear_s_m >= 0.0 {
            let (f, r, shared) = self.net.front_rear_on_piece(v.piece, v.s_m, rear_s_m);
            if let Some(k) = shared {
                let c = [(f[0] + r[0]) / 2.0, (f[1] + r[1]) / 2.0, (f[2] + r[2]) / 2.0];
                return (f, r, c, self.net.segment_heading_rad(k));
            }
            let (c, h) = center_heading_of(f, r, v.heading_rad);
            return (f, r, c, h);
        }
        let (f, r) = self.pose(v);
        let (c, h) = center_heading_of(f, r, v.heading_rad);
        (f, r, c, h)
    }

    /// Centre, heading of the vehicle in `slot` (from the pose cache when it holds it).
    fn center_heading(&self, slot: usize) -> ([f64; 3], f64) {
        let v = &self.vehicles[slot];
        match self.poses.get(slot) {
            Some(c) if c.holds(v) => (c.center, c.heading_rad),
            _ => {
                let (_, _, c, h) = self.pose_center_heading(v);
                (c, h)
            }
        }
    }

    /// Boxes of all vehicles, in slot order.
    pub fn boxes(&self) -> Vec<VehicleBox> {
        let nl = self.net.n_lanes as u32;
        self.vehicles
            .iter()
            .enumerate()
            .filter(|(_, v)| v.alive)
            .map(|(slot, v)| {
                let (c, h) = self.center_heading(slot);
                VehicleBox {
                    agent_id: v.id,
                    center: [c[0], c[1]],
                    heading_rad: h,
                    length_m: v.p.length_m,
                    width_m: v.p.width_m,
                    speed_mps: v.v_mps,
                    lane: (v.piece < nl).then_some((v.piece, v.s_m)),
                }
            })
            .collect()
    }

    /// Updates the recorded headings (call once per step after [`VehicleSim::step`]), and
    /// keeps every vehicle's pose for the records and the next step's clearance guard.
    pub fn update_headings(&mut self) {
        self.poses.resize(self.vehicles.len(), PoseCache::NONE);
        for i in 0..self.vehicles.len() {
            // A vehicle that has not moved keeps its pose (and heading).
            if self.vehicles[i].alive && !self.poses[i].holds(&self.vehicles[i]) {
                let v = &self.vehicles[i];
                let (f, r, center, heading_rad) = self.pose_center_heading(v);
                self.poses[i] = PoseCache {
                    piece: v.piece,
                    prev: v.prev_piece,
                    s_m: v.s_m,
                    lat_m: v.lat_m,
                    f,
                    r,
                    center,
                    heading_rad,
                };
                self.vehicles[i].heading_rad = heading_rad;
            }
        }
    }

    /// The pose of the vehicle in `slot`, from the cache when it still holds it.
    fn pose_of_slot(&self, slot: usize) -> ([f64; 3], [f64; 3]) {
        let v = &self.vehicles[slot];
        match self.poses.get(slot) {
            Some(c) if c.holds(v) => (c.f, c.r),
            _ => self.pose(v),
        }
    }

    /// Records of all vehicles.
    pub fn records(&self, signals: &SignalController, step: u32, time_s: f64, out: &mut Vec<TrajectoryRecord>) {
        let nl = self.net.n_lanes as u32;
        for (slot, v) in self.vehicles.iter().enumerate().filter(|(_, v)| v.alive) {
            let (c, h) = self.center_heading(slot);
            let lane = self.lane_of(v.piece);
            let signal = lane.and_then(|l| match self.planned_conn(v, l, v.route_idx) {
                Some(cn) if self.net.gate[l as usize] == Gate::Signal => signals.connection_state(cn, time_s),
                _ => signals.lane_state(l, time_s),
            });
            let _ = nl;
            out.push(TrajectoryRecord {
                agent_id: v.id,
                kind: v.kind,
                length_m: v.p.length_m as f32,
                width_m: v.p.width_m as f32,
                step,
                time_s,
                x_m: c[0],
                y_m: c[1],
                z_m: c[2],
                heading_rad: h,
                // Backwards while backing away (the only negative speeds).
                speed_mps: if v.reverse_for != NONE { -v.reverse_mps } else { v.v_mps },
                accel_mps2: v.a_mps2,
                lane,
                signal,
            });
        }
    }
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    /// `floor_i64` is `floor` then the cast, also at the edges.
    #[test]
    fn floor_i64_is_floor() {
        let mut rng = CounterRng::new(3, 1);
        let edges = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -0.5,
            1e-300,
            -1e-300,
            4503599627370495.5,
            -4503599627370495.5,
            1e19,
            -1e19,
            f64::NAN,
        ];
        for x in edges.into_iter().chain((0..10_000).map(|_| rng.range_f64(-1e6, 1e6))) {
            assert_eq!(floor_i64(x), x.floor() as i64, "{x}");
        }
    }

    /// Re-keying a grid keeps the last order and insertion-sorts: the result is the sorted
    /// keys, whatever moved, left or arrived (also beyond the fallback's budget).
    #[test]
    fn regrid_equals_sorting_the_keys() {
        let mut rng = CounterRng::new(5, 2);
        let (mut grid, mut seen) = (Vec::new(), Vec::new());
        let mut cells = vec![(0i64, 0i64); 300];
        for round in 0..200 {
            // Mostly a few vehicles crossing into a next cell; every 10th round a shuffle.
            let n = 250 + (rng.next_u64() % 50) as usize;
            let p_move = if round % 10 == 0 { 1.0 } else { 0.05 };
            let keys: Vec<u64> = (0..n)
                .map(|slot| {
                    if rng.chance(p_move) {
                        let d = |rng: &mut CounterRng| (rng.next_u64() % 3) as i64 - 1;
                        cells[slot] = if p_move < 1.0 {
                            (cells[slot].0 + d(&mut rng), cells[slot].1 + d(&mut rng))
                        } else {
                            ((rng.next_u64() % 40) as i64 - 20, (rng.next_u64() % 40) as i64 - 20)
                        };
                    }
                    if rng.chance(0.02) { u64::MAX } else { guard_entry(cells[slot], slot as u32) }
                })
                .collect();
            regrid(&mut grid, &keys, &mut seen);
            let mut want: Vec<u64> = keys.iter().copied().filter(|&k| k != u64::MAX).collect();
            want.sort_unstable();
            assert_eq!(grid, want, "round {round}");
        }
    }

    /// The guard's boxes are the metric's: the same depth wherever they can touch, and
    /// "apart" wherever the metric says apart.
    #[test]
    fn guard_box_depth_matches_the_collision_metric() {
        let mut rng = CounterRng::new(7, 1);
        let mut touching = 0;
        for _ in 0..20_000 {
            let mut pick = || {
                let (l, w) =
                    if rng.chance(0.5) { (rng.range_f64(3.0, 12.0), rng.range_f64(1.5, 2.6)) } else { (0.7, 0.6) };
                let c = [rng.range_f64(-8.0, 8.0), rng.range_f64(-8.0, 8.0)];
                let h = rng.range_f64(-3.2, 3.2);
                let (sn, cs) = h.sin_cos();
                let half = [l / 2.0, w / 2.0];
                (
                    GuardBox { c, u: [cs, sn], half, radius: (half[0] * half[0] + half[1] * half[1]).sqrt() },
                    OrientedBox { center: c, heading_rad: h, length_m: l, width_m: w },
                )
            };
            let ((ga, oa), (gb, ob)) = (pick(), pick());
            let (dg, dm) = (ga.depth(&gb), oa.overlap_depth_m(&ob));
            if dm > 0.0 {
                touching += 1;
                assert!((dg - dm).abs() < 1e-9, "guard {dg} vs metric {dm}");
            } else {
                assert!(dg <= 0.0, "guard says touching ({dg}) where the metric says apart ({dm})");
            }
        }
        assert!(touching > 1000, "only {touching} touching pairs drawn");
    }

    /// A body built from front and rear points is centred between them, along them.
    #[test]
    fn body_box_is_centred_between_front_and_rear() {
        let p = Params::of(AgentKind::Bus);
        let b = body_box_of([10.0, 0.0, 0.0], [0.0, 0.0, 0.0], &p, 1.0);
        assert_eq!(b.c, [5.0, 0.0]);
        assert!((b.u[0] - 1.0).abs() < 1e-12 && b.u[1].abs() < 1e-12);
        assert_eq!(b.half, [6.0, 1.25]);
    }
}
