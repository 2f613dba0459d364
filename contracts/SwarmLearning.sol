// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SwarmToken} from "./SwarmToken.sol";

/**
 * @title SwarmLearning
 * @notice Keeps a learning swarm's state (members, epoch, phase, leader, merge, validation
 * reports) and pays every participant in SwarmToken at the end of each epoch by measured
 * contribution: a `beta` share by data weight (the declared samples, capped by the allowance
 * the admin attested, as far as the node's evidence backs them) and a `1 - beta` share by a
 * smoothed credit, an integer moving average over epochs of the votes of the other
 * validators (each gives a participant the share of its positive Shapley-style scores that
 * the participant holds, at most VOTE_CAP_BPS / 10_000 equal shares, and a report whose positive scores
 * sum to less than VOTE_FLOOR that fraction of a vote, and none more than the epoch's median
 * report). Settled credits are minted to this contract and pulled by their owners with
 * `claim()`.
 *
 * Epoch protocol: Commit -> (elect) Merge -> (publish) Report -> (settle) next epoch's Commit,
 * or Finished when the stopping rule fires; Commit or Merge -> Abandoned when too few nodes
 * commit or every leader candidate times out. Phases only move forward.
 *
 * Commitments are bound to their sender: a node commits keccak256(abi.encode(node, epoch,
 * sha256 of its file)) and serves the file under the base URI it enrolled with, so a copy
 * of someone else's commitment never matches the file it resolves to.
 *
 * Reports are not stored: each one is folded into a per-epoch hash chain and emitted in
 * `ValidationReported`. Settlement takes the reports back as calldata, in reporting order,
 * and checks them against the chain, so storage per report is O(1) and the event stream is
 * the complete contribution ledger. The settler also supplies the metrics' lower median
 * as a hint, which the contract verifies by counting rather than sorting.
 *
 * @dev NOTE: threat assumptions.
 * - Sample allowances are attested by the admin (the consortium knows its members' data
 *   sizes); a declared count above the allowance counts as the allowance.
 * - Every committer reports the merge hash it recomputed and the committed updates it found
 *   valid. When a strict majority of an epoch's committers reported (quorate), a leader whose
 *   hash a strict majority of reporters contradict, or that left out an update a strict
 *   majority found valid, forfeits and takes a strike; the majority's hash is the epoch's
 *   global model (`EpochState.modelHash`). A committer left out whose update no strict
 *   majority found valid takes a strike. Scores, strikes and the metric count only in a
 *   quorate epoch.
 * - Credits are claimable after CLAIM_AFTER consecutive clean epochs or at the finish; a
 *   suspension forfeits the unclaimed balance to the next budgets.
 * - The leader is drawn from the committed set with the hash of the block that closed the
 *   commit phase, read in a later block (`drawLeader`): unknown to every member while it
 *   can commit, whatever the chain's prevrandao. Residual surface: a block producer that is
 *   also a member could withhold that block to re-roll (see SECURITY.md).
 * - The owner (consortium admin) controls membership and allowances only. No role can move
 *   credited rewards: credits are only ever increased by settlement and decreased by their
 *   owner's claim.
 */
contract SwarmLearning is Ownable2Step {
    using SafeERC20 for SwarmToken;
    /// @notice Phases of an epoch. Values only increase within an epoch.
    enum Phase {
        Commit,
        Merge,
        Report,
        Settled,
        Abandoned
    }

    /// @notice Membership status of an account.
    enum Status {
        None,
        Active,
        Suspended,
        Removed
    }

    /// @notice Why a participant's payout was not credited (see `ParticipantSettled`).
    enum Forfeit {
        None,
        NotReported, // a participant that does not validate is not paid
        LeaderTimedOut, // skipped by fail-over
        Removed, // removed by the admin before settlement
        MergeContradicted, // leader: a strict majority of reporters recomputed another merge
        Censored, // leader: left out an update a strict majority of reporters found valid
        OverDeclared, // declared more samples than its attested allowance
        Invalid // merged, but no strict majority of a quorate epoch's reporters found its update valid
    }

    /// @notice Configuration fixed at deployment.
    struct Config {
        uint16 minPeers; // committed nodes needed before a leader can be elected
        uint16 maxPeers; // bound on active members, hence on every loop (<= 112)
        uint32 commitWindow; // seconds from epoch start before election is allowed
        uint32 mergeWindow; // seconds the leader has to publish the merge
        uint32 reportWindow; // seconds committers have to report validation
        uint16 betaBps; // data-volume share of the budget, in basis points
        uint16 smoothingBps; // weight of an epoch's credit in the smoothed credit (1..10000)
        uint16 standingBps; // share of the average smoothed credit per sample that full data weight needs
        uint8 suspendAfter; // strikes (evidence backing under half its data, an invalid or rejected update, a leader fault) before suspension (0 = off)
        uint32 maxEpochs; // the swarm finishes after this many settled epochs
        uint32 patience; // epochs without an improvement of minDelta before finishing (0 = off)
        int64 targetMetric; // finish when the median validation metric reaches this (0 = off)
        int64 minDelta; // smallest metric gain that counts as an improvement
        uint256 rewardPerEpoch; // tokens (wei) minted per epoch, before carried dust (<= 1e30)
        bytes32 mergeRule; // merge rule id agreed at onboarding, e.g. "fltrust_median"
        bytes32 scorer; // contribution scorer id agreed at onboarding, e.g. "exact_shapley"
    }

    /// @notice A member's record.
    struct Member {
        bool allowListed;
        Status status;
        uint8 strikes; // consecutive strikes; reset by a quorate epoch without one
        uint16 commitIndex; // index in the epoch's commits, valid when lastSubmitEpoch matches
        uint64 expiry; // authorisation ends at this timestamp (0 = never)
        uint32 lastSubmitEpoch; // last epoch this member committed in
        uint64 allowance; // samples the admin attested this member holds
        int48 smoothedScore; // moving average of its epoch credits (in [0, CREDIT_SCALE])
        uint8 cleanEpochs; // consecutive quorate epochs it was settled in without a strike (capped at 255)
    }

    /// @notice An accepted commitment; `samples` is already capped by the allowance, and
    /// `overDeclared` records a declaration above it. The commitment lives in `UpdateSubmitted`.
    struct Commit {
        address node;
        uint64 samples;
        bool overDeclared;
    }

    /// @notice Per-epoch state.
    struct EpochState {
        Phase phase;
        uint64 deadline; // end of the current phase's window
        uint16 commitCount;
        uint16 participantCount;
        uint16 leaderIndex; // index into commits of the current leader
        uint16 failovers; // leaders skipped so far
        uint64 drawBlock; // the block whose hash draws the leader (set when commits close)
        bool drawn; // leaderIndex is valid
        uint256 participants; // bitmap over commit indices, set by the leader
        uint256 reporters; // bitmap over commit indices of committers that reported
        uint256 skipped; // bitmap over commit indices of leaders that timed out
        bytes32 reportsDigest; // hash chain over reports in arrival order
        bytes32 mergedHash; // the leader's published merge
        bytes32 modelHash; // the epoch's global model, fixed at settlement
    }

    /**
     * @notice An epoch's validation reports, as emitted by `ValidationReported` and in that
     * order, re-supplied to settle: per report its reporter, metric, recomputed merge hash and
     * bitmap of committed updates found valid, and every report's score vector one after the
     * other with each score in 8 bytes (big-endian two's complement), so reports x
     * participants x 8 bytes. Scores are packed because settlement carries every score of
     * the epoch, and calldata is its cost that grows fastest.
     */
    struct Reports {
        address[] reporters;
        int64[] metrics;
        bytes32[] mergedHashes;
        uint256[] valids;
        bytes scores;
    }

    uint256 private constant _BPS = 10_000;
    uint256 private constant _BITMAP_BITS = 256; // participant and reporter bitmaps are one word
    /// @dev Settlement of a full epoch must fit in one transaction and one block, or the
    /// epoch's rewards could never be credited: it carries every score of every report
    /// (8 n^2 bytes) and counts each. Measured at 112 participants, all reporting, with
    /// gas-maximising scores (see SECURITY.md, guarantee 7).
    uint256 private constant _MAX_PEERS_LIMIT = 112;
    /// @notice Scores are fixed-point with 1e9 = 1.0 (a share of the full merged step) and
    /// must lie in [-SCORE_BOUND, SCORE_BOUND]; metrics in [0, METRIC_BOUND] (1e6 = 1.0).
    int64 public constant SCORE_BOUND = 1e9;
    int64 public constant METRIC_BOUND = 1e6;
    /// @notice One reporter's vote: a participant's epoch credit is the mean over the other
    /// reporters of the share of their positive scores it holds, in units of CREDIT_SCALE.
    uint256 public constant CREDIT_SCALE = 1e9;
    /// @notice The most of its vote a report gives one participant, in basis points of an
    /// equal share of the participants it rates (15_000: one and a half equal shares): a liar
    /// cannot put its whole vote on one accomplice, and two nodes pooled under one identity
    /// cannot draw from one report what they drew as two (README, "The reward rule", step 3).
    uint256 public constant VOTE_CAP_BPS = 15_000;
    /// @notice The positive scores (in SCORE_BOUND units, 0.2) a report must hold for a whole
    /// vote; a report holding less gives that fraction of one, so the noise of an epoch in
    /// which the reporter measured next to no improvement moves next to no credit.
    uint256 public constant VOTE_FLOOR = 2e8;
    /// @notice Revision of the reward rule, for what no other constant shows: 2 caps every
    /// report's vote by the epoch's median report (`_vote`); 3 strikes nobody for low credit in
    /// an epoch in which no participant holds credit (`_settleOne`); 4 caps a vote's share for
    /// one participant at one and a half equal shares instead of two (`VOTE_CAP_BPS`). An
    /// auditor checks it before replaying settlements with its reference rule.
    uint256 public constant VOTE_RULE_REVISION = 4;
    /// @notice Consecutive quorate epochs without a strike a member must have taken part in
    /// before it can claim (until the swarm finishes): a node paid for honest epochs that
    /// then forges is struck before it can take the money out, and suspension forfeits it.
    uint256 public constant CLAIM_AFTER = 2;
    /// @dev Bound on rewardPerEpoch (10^12 tokens of 18 decimals): the carry grows at most by
    /// one reward per epoch plus forfeited balances, themselves paid from earlier rewards, so
    /// `rewardPerEpoch + carry` cannot overflow in 2^64 epochs.
    uint256 private constant _MAX_REWARD = 1e30;
    // Packed median-check counts: metrics below the hint in the low half, at or below it in the high half.
    uint256 private constant _AT = uint256(1) << 128;
    uint256 private constant _BELOW = _AT | 1;
    uint256 private constant _LOW_HALF = _AT - 1;

    SwarmToken public immutable token;
    Config private _config;

    uint64 public currentEpoch;
    /// @notice Epochs settled so far (abandoned epochs do not count toward maxEpochs).
    uint64 public settledEpochs;
    bool public finished;
    bool private _hasBest;
    int64 public bestMetric;
    uint32 public staleEpochs;
    uint16 public activeCount;
    /// @notice Rounding dust and forfeited shares waiting to be added to the next budget.
    uint256 public carry;
    /// @notice Credited but not yet claimed tokens per account.
    mapping(address account => uint256) public claimable;

    mapping(address account => Member) private _members;
    mapping(address account => string) private _baseUris;
    mapping(uint256 epoch => EpochState) private _epochs;
    mapping(uint256 epoch => mapping(uint256 index => Commit)) private _commits;

    // ------------------------------------------------------------------ events
    /// @notice An account was allow-listed (or renewed) with its attested sample allowance.
    event AccountAuthorized(address indexed account, uint64 expiry, uint64 allowance);
    /// @notice A member was removed by the owner; it forfeits unsettled payouts.
    event NodeRemoved(address indexed account);
    /// @notice An allow-listed account joined with the base URI of its parameter store.
    event NodeEnrolled(address indexed account, string baseUri);
    /// @notice A member left voluntarily.
    event NodeLeft(address indexed account);
    /// @notice A member whose authorisation expired gave up its seat.
    event NodeExpired(address indexed account);
    /// @notice A member was suspended after `strikes` strikes.
    event NodeSuspended(address indexed account, uint256 indexed epoch, uint8 strikes);
    /// @notice A new epoch opened for commitments.
    event EpochOpened(uint256 indexed epoch, uint64 commitDeadline, uint256 budget);
    /// @notice A node committed keccak256(abi.encode(node, epoch, sha256)) for `epoch`,
    /// declaring `declaredSamples`, of which `samples` (capped by its allowance) count.
    event UpdateSubmitted(
        uint256 indexed epoch,
        address indexed node,
        uint16 index,
        bytes32 commitment,
        uint64 declaredSamples,
        uint64 samples
    );
    /// @notice The commit phase closed; the hash of block `drawBlock` will draw the leader.
    event CommitsClosed(uint256 indexed epoch, uint64 drawBlock);
    /// @notice A leader was drawn; it must publish before `deadline`.
    event LeaderElected(uint256 indexed epoch, address indexed leader, uint256 seed, uint64 deadline);
    /// @notice The leader missed its deadline and the next candidate took over.
    event LeaderSkipped(uint256 indexed epoch, address indexed skipped, address indexed next, uint64 deadline);
    /// @notice The leader published the sha256 of the merged model over the participants
    /// bitmap; the file is served under the leader's base URI.
    event MergePublished(uint256 indexed epoch, address indexed leader, bytes32 mergedHash, uint256 participants);
    /// @notice A committer reported its validation metric, the merge hash it recomputed, the
    /// bitmap of committed updates it fetched and found valid, and one score per participant.
    event ValidationReported(
        uint256 indexed epoch, address indexed reporter, int64 metric, bytes32 mergedHash, uint256 valid, int64[] scores
    );
    /// @notice A strict majority of reporters recomputed `majorityHash`, not the leader's.
    event MergeDisputed(uint256 indexed epoch, address indexed leader, bytes32 publishedHash, bytes32 majorityHash);
    /// @notice The leader left out `node`'s update, which a strict majority found valid.
    event UpdateCensored(uint256 indexed epoch, address indexed leader, address indexed node);
    /// @notice `node`'s committed update was left out and no strict majority found it valid:
    /// it takes a strike.
    event UpdateRejected(uint256 indexed epoch, address indexed node);
    /// @notice A suspension at `epoch` forfeited `account`'s unclaimed `amount` to `carry`
    /// (taken out of the supply, and minted again to whoever earns the next budgets).
    event BalanceForfeited(address indexed account, uint256 indexed epoch, uint256 amount);
    /// @notice A participant's settled outcome: the epoch's credit (the mean of the other
    /// reporters' votes), its smoothed credit after the epoch, whether it stood well (its
    /// evidence backs all of its samples: full data weight) and its payout; a forfeited
    /// payout went to `carry`.
    event ParticipantSettled(
        uint256 indexed epoch,
        address indexed node,
        uint64 samples,
        int64 score,
        int64 smoothedScore,
        bool standing,
        uint256 payout,
        Forfeit forfeit
    );
    /// @notice An epoch was settled: `credited` to credits (the supply moves by it less what
    /// suspensions forfeited), `carried` to the next budget (forfeits included); `modelHash` is its global model. Scores and the metric count only if `quorate`.
    event EpochSettled(
        uint256 indexed epoch,
        uint256 budget,
        uint256 credited,
        uint256 carried,
        int64 medianMetric,
        uint16 reporters,
        bool quorate,
        bytes32 modelHash
    );
    /// @notice Too few nodes committed in time, or every candidate leader timed out; the
    /// budget is carried and the next epoch opens.
    event EpochAbandoned(uint256 indexed epoch, uint256 carried);
    /// @notice The stopping rule fired after `epoch`.
    event SwarmFinished(uint256 indexed epoch, int64 bestMetric);
    /// @notice `account` claimed `amount` of its credits.
    event RewardClaimed(address indexed account, uint256 amount);

    // ------------------------------------------------------------------ errors
    /**
     * @notice A deployment parameter is out of range.
     * @param field Name of the offending field.
     * @param value Value that was given.
     */
    error InvalidConfig(string field, uint256 value);
    /// @notice A zero address was given. @param field Name of the parameter.
    error ZeroAddress(string field);
    /// @notice An authorisation needs a non-zero sample allowance.
    error ZeroAllowance(address account);
    /// @notice `account` is not on the allow-list.
    error NotAllowListed(address account);
    /// @notice `account`'s authorisation ended at `expiry` (now is `timestamp`).
    error AuthorizationExpired(address account, uint64 expiry, uint256 timestamp);
    /// @notice `account`'s authorisation has not expired (it ends at `expiry`, 0 = never).
    error AuthorizationNotExpired(address account, uint64 expiry);
    /// @notice `account` is already an active member.
    error AlreadyEnrolled(address account);
    /// @notice `account` is not an active member (its status is `status`).
    error NotActive(address account, Status status);
    /// @notice `account` has never been authorised or enrolled.
    error UnknownNode(address account);
    /// @notice Enrolling would exceed `maxPeers` active members.
    error MaxPeersReached(uint16 maxPeers);
    /// @notice The call refers to `given` but the open epoch is `current` (stale or future).
    error WrongEpoch(uint256 given, uint256 current);
    /// @notice The epoch is in phase `current`, the call needs `expected`.
    error WrongPhase(uint256 epoch, Phase current, Phase expected);
    /// @notice The swarm has met its stopping rule; no more epochs.
    error SwarmIsFinished();
    /// @notice `node` already committed in `epoch`.
    error AlreadySubmitted(address node, uint256 epoch);
    /// @notice A commitment needs a non-zero commitment, samples, a base URI (`reason`).
    error InvalidSubmission(string reason);
    /// @notice Election is not allowed before the commit window closes at `closesAt`.
    error CommitWindowOpen(uint256 epoch, uint64 closesAt);
    /// @notice `committed` nodes committed, `minPeers` are needed.
    error NotEnoughCommits(uint256 epoch, uint16 committed, uint16 minPeers);
    /// @notice The commit phase may be abandoned only after `at` with fewer than minPeers commits.
    error EpochNotStalled(uint256 epoch, uint64 at);
    /// @notice Only the current leader `leader` may publish.
    error NotLeader(address caller, address leader);
    /// @notice The leader must merge its own update (it anchors the merge).
    error LeaderNotParticipant(address leader);
    /// @notice The leader of `epoch` is drawn from the hash of block `drawBlock`, which is
    /// not final yet (or is: then `drawLeader` has drawn it already).
    error LeaderNotDrawn(uint256 epoch, uint64 drawBlock);
    /// @notice The leader of `epoch` is already drawn.
    error LeaderAlreadyDrawn(uint256 epoch);
    /// @notice The merge window runs until `deadline`; fail-over must wait.
    error MergeWindowOpen(uint256 epoch, uint64 deadline);
    /// @notice The phase window ended at `deadline`.
    error DeadlinePassed(uint256 epoch, uint64 deadline);
    /// @notice A bitmap names commit index `index`, but only `committed` exist.
    error ParticipantNotCommitted(uint256 index, uint16 committed);
    /// @notice The merge names `count` participants, `minPeers` are needed.
    error TooFewParticipants(uint256 count, uint16 minPeers);
    /// @notice `account` did not commit in `epoch`, so it cannot report.
    error NotCommitter(address account, uint256 epoch);
    /// @notice `account` already reported in `epoch`.
    error AlreadyReported(address account, uint256 epoch);
    /// @notice The score vector has `given` entries, there are `expected` participants.
    error ScoreCountMismatch(uint256 given, uint256 expected);
    /// @notice Score `index` is `score`, outside [-SCORE_BOUND, SCORE_BOUND].
    error ScoreOutOfRange(uint256 index, int64 score);
    /// @notice The metric `metric` is outside [0, METRIC_BOUND].
    error MetricOutOfRange(int64 metric);
    /// @notice Settlement needs every committer's report or the report deadline to pass.
    error SettlementNotDue(uint256 epoch, uint16 reported, uint16 committed, uint64 deadline);
    /// @notice `given` reports were supplied, `expected` were made.
    error ReportCountMismatch(uint256 given, uint256 expected);
    /// @notice The packed scores are `given` bytes long; reports x participants x 8 is `expected`.
    error PackedScoresLength(uint256 given, uint256 expected);
    /// @notice The supplied reports do not match the ones made on chain.
    error ReportsMismatch(uint256 epoch);
    /// @notice `given` is not the lower median of the reported metrics (0 without reports).
    error WrongMetricMedian(int64 given);
    /// @notice `account` has no credited tokens.
    error NothingToClaim(address account);
    /// @notice `account` has taken part in `cleanEpochs` consecutive quorate epochs without a
    /// strike, under the `needed` it must have before it can claim (the swarm is not finished).
    error ClaimLocked(address account, uint8 cleanEpochs, uint256 needed);

    // ------------------------------------------------------------------ setup
    /**
     * @param config_ Swarm configuration; every field is checked.
     * @param token_ Reward token; this contract must be granted its MINTER_ROLE.
     * @param admin Consortium admin (owner): manages the allow-list and allowances.
     */
    constructor(Config memory config_, SwarmToken token_, address admin) Ownable(admin) {
        if (address(token_) == address(0)) revert ZeroAddress("token");
        _checkConfig(config_);
        _config = config_;
        token = token_;
        _openEpoch(1, 0, 0);
    }

    function _checkConfig(Config memory c) private pure {
        if (c.maxPeers == 0 || c.maxPeers > _MAX_PEERS_LIMIT) revert InvalidConfig("maxPeers", c.maxPeers);
        if (c.minPeers == 0 || c.minPeers > c.maxPeers) revert InvalidConfig("minPeers", c.minPeers);
        if (c.commitWindow == 0) revert InvalidConfig("commitWindow", 0);
        if (c.mergeWindow == 0) revert InvalidConfig("mergeWindow", 0);
        if (c.reportWindow == 0) revert InvalidConfig("reportWindow", 0);
        if (c.betaBps > _BPS) revert InvalidConfig("betaBps", c.betaBps);
        if (c.smoothingBps == 0 || c.smoothingBps > _BPS) revert InvalidConfig("smoothingBps", c.smoothingBps);
        if (c.standingBps > _BPS) revert InvalidConfig("standingBps", c.standingBps);
        if (c.maxEpochs == 0) revert InvalidConfig("maxEpochs", 0);
        // Magnitudes in int256: negating type(int64).min would overflow in int64.
        if (c.targetMetric < 0 || c.targetMetric > METRIC_BOUND) {
            revert InvalidConfig("targetMetric", _magnitude(c.targetMetric));
        }
        if (c.minDelta < 0) revert InvalidConfig("minDelta", _magnitude(c.minDelta));
        if (c.rewardPerEpoch == 0 || c.rewardPerEpoch > _MAX_REWARD) {
            revert InvalidConfig("rewardPerEpoch", c.rewardPerEpoch);
        }
        if (c.mergeRule == bytes32(0)) revert InvalidConfig("mergeRule", 0);
        if (c.scorer == bytes32(0)) revert InvalidConfig("scorer", 0);
    }

    function _magnitude(int64 value) private pure returns (uint256) {
        int256 wide = value;
        return uint256(wide < 0 ? -wide : wide);
    }

    // ------------------------------------------------------------------ membership
    /**
     * @notice Allow-list `account` until `expiry` (0 = no expiry) with an attested allowance of
     * `allowance` samples: a commitment's declared count above it counts as the allowance.
     * Also lifts a suspension or removal; the account then enrols again.
     */
    function authorize(address account, uint64 expiry, uint64 allowance) external onlyOwner {
        if (account == address(0)) revert ZeroAddress("account");
        if (allowance == 0) revert ZeroAllowance(account);
        Member storage m = _members[account];
        m.allowListed = true;
        m.expiry = expiry;
        m.allowance = allowance;
        if (m.status == Status.Suspended || m.status == Status.Removed) {
            m.status = Status.None;
            m.strikes = 0;
        }
        emit AccountAuthorized(account, expiry, allowance);
    }

    /// @notice Remove `account` from the swarm; it forfeits payouts of unsettled epochs.
    function removeNode(address account) external onlyOwner {
        Member storage m = _members[account];
        if (!m.allowListed && m.status == Status.None) revert UnknownNode(account);
        if (m.status == Status.Removed) revert NotActive(account, Status.Removed);
        if (m.status == Status.Active) activeCount -= 1;
        m.allowListed = false;
        m.status = Status.Removed;
        emit NodeRemoved(account);
    }

    /// @notice Join the swarm; `baseUri` is where this node serves its parameter files.
    function enroll(string calldata baseUri) external {
        Member storage m = _members[msg.sender];
        _checkAuthorized(msg.sender, m);
        if (m.status == Status.Active) revert AlreadyEnrolled(msg.sender);
        if (m.status != Status.None) revert NotActive(msg.sender, m.status);
        if (bytes(baseUri).length == 0) revert InvalidSubmission("empty baseUri");
        if (activeCount >= _config.maxPeers) revert MaxPeersReached(_config.maxPeers);
        activeCount += 1;
        m.status = Status.Active;
        _baseUris[msg.sender] = baseUri;
        emit NodeEnrolled(msg.sender, baseUri);
    }

    /**
     * @notice Leave the swarm. Credits stay, claimable on the usual terms (see `claim`); a
     * pending commitment stays valid, and strikes keep counting (a suspension applies
     * whatever the status and forfeits the unclaimed balance).
     */
    function leave() external {
        Member storage m = _members[msg.sender];
        if (m.status != Status.Active) revert NotActive(msg.sender, m.status);
        activeCount -= 1;
        m.status = Status.None;
        emit NodeLeft(msg.sender);
    }

    /**
     * @notice Free the seat of an active member whose authorisation has expired. Anyone may
     * call. The rule: an expired member finishes the epoch it committed to (it may report
     * and is paid), and nothing after: it cannot commit, and its seat is released here or
     * when that epoch settles.
     */
    function releaseExpired(address account) external {
        Member storage m = _members[account];
        if (m.status != Status.Active) revert NotActive(account, m.status);
        if (!_expired(m)) revert AuthorizationNotExpired(account, m.expiry);
        _release(account, m);
    }

    // ------------------------------------------------------------------ epoch protocol
    /**
     * @notice Commit this node's parameters for `epoch`: `commitment` is
     * keccak256(abi.encode(msg.sender, epoch, sha256 of the file)), the file served under this
     * node's base URI once the commit phase is over, trained on `numSamples` samples. At most
     * the allowance counts (for the data share, the merge weights and the scoring weights),
     * and a declaration above it forfeits this epoch's payout: an honest node declares
     * min(its samples, its allowance).
     * @dev Accepted for as long as the epoch is in the Commit phase, so a swarm short of
     * `minPeers` keeps waiting for late nodes until `abandonEpoch` becomes possible.
     */
    function submitUpdate(uint256 epoch, bytes32 commitment, uint64 numSamples) external {
        EpochState storage e = _openEpochState(epoch, Phase.Commit);
        Member storage m = _members[msg.sender];
        if (m.status != Status.Active) revert NotActive(msg.sender, m.status);
        _checkAuthorized(msg.sender, m);
        if (m.lastSubmitEpoch == epoch) revert AlreadySubmitted(msg.sender, epoch);
        if (commitment == bytes32(0)) revert InvalidSubmission("zero commitment");
        if (numSamples == 0) revert InvalidSubmission("zero numSamples");
        uint16 index = e.commitCount;
        // Members can leave and others enrol mid-epoch, so bound the commitments themselves:
        // every bitmap over commit indices must fit in one word.
        if (index >= _config.maxPeers) revert MaxPeersReached(_config.maxPeers);
        bool overDeclared = numSamples > m.allowance;
        uint64 samples = overDeclared ? m.allowance : numSamples;
        e.commitCount = index + 1;
        m.lastSubmitEpoch = SafeCast.toUint32(epoch);
        m.commitIndex = index;
        _commits[epoch][index] = Commit(msg.sender, samples, overDeclared);
        emit UpdateSubmitted(epoch, msg.sender, index, commitment, numSamples, samples);
    }

    /**
     * @notice Close the commit phase. The leader is drawn from the hash of this very block,
     * which `drawLeader` reads from the next block on: no member can know it while it can
     * still commit, and on chains whose prevrandao is constant (PoA, QBFT) it still varies.
     * Anyone may call, after the commit window or as soon as every active member committed,
     * once at least minPeers did.
     */
    function electLeader(uint256 epoch) external {
        EpochState storage e = _openEpochState(epoch, Phase.Commit);
        // The window is an upper bound, not a wait: once every active member committed,
        // nobody is left to wait for.
        if (block.timestamp <= e.deadline && e.commitCount < activeCount) revert CommitWindowOpen(epoch, e.deadline);
        if (e.commitCount < _config.minPeers) revert NotEnoughCommits(epoch, e.commitCount, _config.minPeers);
        e.phase = Phase.Merge;
        e.drawBlock = uint64(block.number);
        e.deadline = uint64(block.timestamp) + _config.mergeWindow;
        emit CommitsClosed(epoch, e.drawBlock);
    }

    /**
     * @notice Draw the leader from the hash of the block that closed the commit phase; the
     * leader then has `mergeWindow` to publish. If that hash is no longer available (256
     * blocks passed), the draw moves to the current block. Anyone may call.
     */
    function drawLeader(uint256 epoch) external {
        EpochState storage e = _openEpochState(epoch, Phase.Merge);
        if (e.drawn) revert LeaderAlreadyDrawn(epoch);
        if (block.number <= e.drawBlock) revert LeaderNotDrawn(epoch, e.drawBlock);
        bytes32 hash = blockhash(e.drawBlock);
        if (hash == bytes32(0)) {
            e.drawBlock = uint64(block.number);
            emit CommitsClosed(epoch, e.drawBlock);
            return;
        }
        uint256 seed = uint256(keccak256(abi.encode(hash, epoch, address(this))));
        // Triaged (SECURITY.md, "Static analysis"): the hash of a block that did not exist
        // while members could commit is the intended randomness; no oracle on a PoA chain.
        // slither-disable-next-line weak-prng
        uint16 leaderIndex = uint16(seed % e.commitCount);
        uint64 deadline = uint64(block.timestamp) + _config.mergeWindow;
        e.drawn = true;
        e.leaderIndex = leaderIndex;
        e.deadline = deadline;
        emit LeaderElected(epoch, _commits[epoch][leaderIndex].node, seed, deadline);
    }

    /**
     * @notice Abandon an epoch in which fewer than `minPeers` nodes committed within twice the
     * commit window; its budget is carried and the next epoch opens. Anyone may call, so no
     * epoch waits forever for the admin or for late nodes.
     */
    function abandonEpoch(uint256 epoch) external {
        EpochState storage e = _openEpochState(epoch, Phase.Commit);
        uint64 at = e.deadline + _config.commitWindow;
        if (block.timestamp <= at || e.commitCount >= _config.minPeers) revert EpochNotStalled(epoch, at);
        _abandon(epoch, e);
    }

    /**
     * @notice After the leader's deadline, or at once if the owner removed the leader, hand
     * leadership to the next committed node. The skipped leader forfeits its payout this
     * epoch. When every committed node has been skipped the epoch is abandoned and its
     * budget carried. Anyone may call.
     */
    function failover(uint256 epoch) external {
        EpochState storage e = _openEpochState(epoch, Phase.Merge);
        if (!e.drawn) revert LeaderNotDrawn(epoch, e.drawBlock);
        address skipped = _commits[epoch][e.leaderIndex].node;
        if (block.timestamp <= e.deadline && _members[skipped].status != Status.Removed) {
            revert MergeWindowOpen(epoch, e.deadline);
        }
        e.skipped |= (uint256(1) << e.leaderIndex);
        e.failovers += 1;
        if (e.failovers == e.commitCount) {
            emit LeaderSkipped(epoch, skipped, address(0), 0);
            _abandon(epoch, e);
            return;
        }
        uint16 next = uint16((uint256(e.leaderIndex) + 1) % e.commitCount);
        uint64 deadline = uint64(block.timestamp) + _config.mergeWindow;
        e.leaderIndex = next;
        e.deadline = deadline;
        emit LeaderSkipped(epoch, skipped, _commits[epoch][next].node, deadline);
    }

    /**
     * @notice The leader publishes the merged model: its sha256 `mergedHash` (the file is
     * served under the leader's base URI) and the bitmap over commit indices of the updates
     * it merged, which must include its own.
     */
    function publishMerge(uint256 epoch, bytes32 mergedHash, uint256 participants) external {
        EpochState storage e = _openEpochState(epoch, Phase.Merge);
        if (!e.drawn) revert LeaderNotDrawn(epoch, e.drawBlock);
        address leader = _commits[epoch][e.leaderIndex].node;
        if (msg.sender != leader) revert NotLeader(msg.sender, leader);
        if (_members[leader].status == Status.Removed) revert NotActive(leader, Status.Removed);
        if (block.timestamp > e.deadline) revert DeadlinePassed(epoch, e.deadline);
        if (mergedHash == bytes32(0)) revert InvalidSubmission("zero mergedHash");
        _checkCommitted(participants, e.commitCount);
        if (participants & (uint256(1) << e.leaderIndex) == 0) revert LeaderNotParticipant(leader);
        uint256 count = _popCount(participants);
        if (count < _config.minPeers) revert TooFewParticipants(count, _config.minPeers);
        uint64 deadline = uint64(block.timestamp) + _config.reportWindow;
        e.phase = Phase.Report;
        e.participants = participants;
        e.participantCount = uint16(count);
        e.mergedHash = mergedHash;
        e.deadline = deadline;
        emit MergePublished(epoch, leader, mergedHash, participants);
    }

    /**
     * @notice A committer (participant or not) reports the merged model's metric on its
     * validation data, the sha256 of the merge it recomputed, the bitmap over commit indices of
     * the updates it fetched and found valid, and its score for every participant, in
     * ascending commit-index order (fixed-point, see SCORE_BOUND and METRIC_BOUND).
     */
    function reportValidation(uint256 epoch, int64 metric, bytes32 mergedHash, uint256 valid, int64[] calldata scores)
        external
    {
        EpochState storage e = _openEpochState(epoch, Phase.Report);
        if (block.timestamp > e.deadline) revert DeadlinePassed(epoch, e.deadline);
        Member storage m = _members[msg.sender];
        if (m.status == Status.Removed) revert NotActive(msg.sender, Status.Removed);
        if (m.lastSubmitEpoch != epoch) revert NotCommitter(msg.sender, epoch);
        uint256 bit = uint256(1) << m.commitIndex;
        if (e.reporters & bit != 0) revert AlreadyReported(msg.sender, epoch);
        if (scores.length != e.participantCount) revert ScoreCountMismatch(scores.length, e.participantCount);
        if (metric < 0 || metric > METRIC_BOUND) revert MetricOutOfRange(metric);
        _checkCommitted(valid, e.commitCount);
        uint256 bad = _firstOutOfRange(scores);
        if (bad < scores.length) revert ScoreOutOfRange(bad, scores[bad]);
        e.reporters |= bit;
        bytes32 head = keccak256(abi.encode(msg.sender, metric, mergedHash, valid));
        e.reportsDigest = keccak256(abi.encode(e.reportsDigest, head, scores));
        emit ValidationReported(epoch, msg.sender, metric, mergedHash, valid, scores);
    }

    /**
     * @notice Settle `epoch` from its `reports` (see `Reports`: as emitted, in order), with
     * the metrics' lower median as a hint the contract verifies instead of sorting. Two
     * passes over the reports check them against the chain, find the epoch's vote mass and
     * add up each participant's votes; then the leader's accountability (merge hash and
     * censorship, when quorate), smoothed credits, data weights, payouts by the reference
     * rule, strikes, stopping rule. Anyone may call once every committer reported or the
     * report deadline passed.
     */
    function settle(uint256 epoch, Reports calldata reports, int64 metric) external {
        EpochState storage e = _openEpochState(epoch, Phase.Report);
        uint256 reported = _popCount(e.reporters);
        if (reported < e.commitCount && block.timestamp <= e.deadline) {
            revert SettlementNotDue(epoch, uint16(reported), e.commitCount, e.deadline);
        }
        uint256 k = reports.reporters.length;
        _checkLengths(e, reports);
        int64[] memory scores = _checkReports(epoch, e, reports, metric);
        e.phase = Phase.Settled;
        settledEpochs += 1;

        Split memory split = Split(0, 0, 0, 0, 0, 0, 0, false, Forfeit.None);
        // Cannot overflow: k and commitCount are at most maxPeers.
        split.quorate = 2 * k > e.commitCount;
        if (split.quorate) {
            uint256 validByMajority = _validByMajority(reports.valids);
            split.leaderFault = _judgeLeader(epoch, e, reports, validByMajority);
            split.invalid = e.participants & ~validByMajority;
            split.rejected = ((uint256(1) << e.commitCount) - 1) & ~e.participants & ~validByMajority;
        }
        if (e.modelHash == bytes32(0)) e.modelHash = e.mergedHash;
        split.budget = _budget();
        uint256 credited = _credit(epoch, e, scores, split);
        _settleCommitters(epoch, e, split);
        // Forfeited balances go to the carry: netted against this epoch's mint below, paid again later.
        carry = split.budget - credited + split.forfeited;
        emit EpochSettled(epoch, split.budget, credited, carry, metric, uint16(k), split.quorate, e.modelHash);

        if (_stoppingRuleFires(metric, split.quorate)) {
            finished = true;
            emit SwarmFinished(epoch, bestMetric);
        } else {
            _openEpoch(epoch + 1, credited, split.forfeited);
        }
        // Last, after every state change: the only external call of settlement. The supply
        // moves by credited - forfeited; a forfeited balance may hold this epoch's credit, not
        // minted yet, so the two are netted (the swarm holds every older credit it burns).
        if (credited > split.forfeited) token.mint(address(this), credited - split.forfeited);
        else if (split.forfeited > credited) token.burn(split.forfeited - credited);
    }

    /// @dev Every array of `reports` has one entry per report made, the packed scores one per
    /// report and participant.
    function _checkLengths(EpochState storage e, Reports calldata reports) private view {
        uint256 k = reports.reporters.length;
        if (k != _popCount(e.reporters)) revert ReportCountMismatch(k, _popCount(e.reporters));
        if (reports.metrics.length != k) revert ReportCountMismatch(reports.metrics.length, k);
        if (reports.mergedHashes.length != k) revert ReportCountMismatch(reports.mergedHashes.length, k);
        if (reports.valids.length != k) revert ReportCountMismatch(reports.valids.length, k);
        uint256 n = e.participantCount;
        if (reports.scores.length != k * n * 8) revert PackedScoresLength(reports.scores.length, k * n * 8);
    }

    /**
     * @notice Transfer all of the caller's credited tokens to it, once it has taken part in
     * CLAIM_AFTER consecutive quorate epochs without a strike, or the swarm has finished, or
     * it is no longer active (left, expired or removed; not suspended), its last commitment
     * is settled and that settlement gave it no strike (so a stalled swarm cannot lock a
     * departed member's credits for ever).
     */
    function claim() external {
        uint256 amount = claimable[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        if (!claimUnlocked(msg.sender)) {
            revert ClaimLocked(msg.sender, _members[msg.sender].cleanEpochs, CLAIM_AFTER);
        }
        claimable[msg.sender] = 0;
        emit RewardClaimed(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ views
    /// @notice Whether `account` may claim now (see `claim`), whatever it holds.
    function claimUnlocked(address account) public view returns (bool) {
        Member storage m = _members[account];
        if (finished || m.cleanEpochs >= CLAIM_AFTER) return true;
        return m.status != Status.Active && m.status != Status.Suspended && m.strikes == 0
            && m.lastSubmitEpoch < currentEpoch;
    }

    /// @notice The deployment configuration.
    function config() external view returns (Config memory) {
        return _config;
    }

    /// @notice State of `epoch`.
    function epochState(uint256 epoch) external view returns (EpochState memory) {
        return _epochs[epoch];
    }

    /// @notice Commitment number `index` of `epoch`.
    function commitAt(uint256 epoch, uint256 index) external view returns (Commit memory) {
        return _commits[epoch][index];
    }

    /// @notice Current leader of `epoch`; the zero address until `drawLeader` drew it.
    function leaderOf(uint256 epoch) external view returns (address) {
        EpochState storage e = _epochs[epoch];
        return e.drawn ? _commits[epoch][e.leaderIndex].node : address(0);
    }

    /// @notice Membership record of `account`.
    function memberOf(address account) external view returns (Member memory) {
        return _members[account];
    }

    /// @notice Base URI of `account`'s parameter store.
    function baseUriOf(address account) external view returns (string memory) {
        return _baseUris[account];
    }

    // ------------------------------------------------------------------ internals
    function _checkAuthorized(address account, Member storage m) private view {
        if (!m.allowListed) revert NotAllowListed(account);
        if (_expired(m)) revert AuthorizationExpired(account, m.expiry, block.timestamp);
    }

    function _expired(Member storage m) private view returns (bool) {
        return m.expiry != 0 && block.timestamp >= m.expiry;
    }

    /// @dev An active member whose authorisation expired gives up its seat.
    function _release(address account, Member storage m) private {
        m.status = Status.None;
        activeCount -= 1;
        emit NodeExpired(account);
    }

    /// @dev A bitmap over commit indices may only name commitments that exist.
    function _checkCommitted(uint256 bitmap, uint16 committed) private pure {
        if (committed < _BITMAP_BITS && bitmap >> committed != 0) {
            revert ParticipantNotCommitted(Math.log2(bitmap), committed);
        }
    }

    function _openEpochState(uint256 epoch, Phase expected) private view returns (EpochState storage e) {
        if (finished) revert SwarmIsFinished();
        if (epoch != currentEpoch) revert WrongEpoch(epoch, currentEpoch);
        e = _epochs[epoch];
        if (e.phase != expected) revert WrongPhase(epoch, e.phase, expected);
    }

    /// @dev `pendingMint`, `pendingBurn`: credits of the epoch just settled and balances it
    /// forfeited, minted and burned after this call, which the announced budget must
    /// already count in the token's mintable supply.
    function _openEpoch(uint256 epoch, uint256 pendingMint, uint256 pendingBurn) private {
        currentEpoch = uint64(epoch);
        uint64 deadline = uint64(block.timestamp) + _config.commitWindow;
        _epochs[epoch].deadline = deadline;
        emit EpochOpened(epoch, deadline, _budgetAfter(pendingMint, pendingBurn));
    }

    /// @dev The whole budget carries to the next epoch, which opens at once.
    function _abandon(uint256 epoch, EpochState storage e) private {
        e.phase = Phase.Abandoned;
        uint256 budget = _budget();
        carry = budget;
        emit EpochAbandoned(epoch, budget);
        _openEpoch(epoch + 1, 0, 0);
    }

    /// @dev This epoch's budget: the reward plus carried dust, limited by the token cap.
    function _budget() private view returns (uint256) {
        return _budgetAfter(0, 0);
    }

    /// @dev The budget once `pendingMint` more tokens exist and `pendingBurn` fewer. Cannot
    /// underflow: a pending mint never exceeds the budget it was credited from, which never
    /// exceeds mintable(); the burn saturates an uncapped mintable(). Cannot overflow: the
    /// carry grows by at most one reward per epoch plus forfeited credits, themselves
    /// rewards, and rewardPerEpoch <= 1e30.
    function _budgetAfter(uint256 pendingMint, uint256 pendingBurn) private view returns (uint256) {
        return Math.min(
            _config.rewardPerEpoch + carry, Math.saturatingAdd(token.mintable(), pendingBurn) - pendingMint
        );
    }

    /**
     * @dev The leader's accountability in a quorate epoch. A hash that a strict majority of
     * reporters recomputed and that is not the leader's becomes the epoch's model and is a
     * fault of the leader; so is leaving out a committed update that a strict majority of
     * reporters found valid (in `validByMajority`; one `UpdateCensored` per such update).
     */
    function _judgeLeader(uint256 epoch, EpochState storage e, Reports calldata reports, uint256 validByMajority)
        private
        returns (Forfeit fault)
    {
        address leader = _commits[epoch][e.leaderIndex].node;
        bytes32 majority = _strictMajority(reports.mergedHashes);
        if (majority != bytes32(0) && majority != e.mergedHash) {
            e.modelHash = majority;
            fault = Forfeit.MergeContradicted;
            emit MergeDisputed(epoch, leader, e.mergedHash, majority);
        }
        uint256 censored = validByMajority & ((uint256(1) << e.commitCount) - 1) & ~e.participants;
        while (censored != 0) {
            uint256 index = Math.log2(censored & (~censored + 1));
            censored &= censored - 1;
            emit UpdateCensored(epoch, leader, _commits[epoch][index].node);
            if (fault == Forfeit.None) fault = Forfeit.Censored;
        }
    }

    /**
     * @dev The commit indices that a strict majority of the `valids` bitmaps name, counted
     * for all 256 indices at once with bit-sliced counters: plane b holds bit b of every
     * index's count (8 planes count up to 255 > maxPeers), and each bitmap is added with a
     * ripple carry, so the cost grows with the reports, not with reports x participants.
     */
    function _validByMajority(uint256[] calldata valids) private pure returns (uint256 majority) {
        uint256[] memory planes = new uint256[](8);
        for (uint256 r = 0; r < valids.length; ++r) {
            uint256 rippling = valids[r];
            for (uint256 b = 0; rippling != 0; ++b) {
                uint256 plane = planes[b];
                planes[b] = plane ^ rippling;
                rippling &= plane;
            }
        }
        // count > floor(k / 2), compared from the most significant plane down.
        uint256 half = valids.length / 2;
        uint256 equal = type(uint256).max;
        for (uint256 b = 8; b > 0; --b) {
            uint256 plane = planes[b - 1];
            if ((half >> (b - 1)) & 1 == 0) {
                majority |= equal & plane;
                equal &= ~plane;
            } else {
                equal &= plane;
            }
        }
    }

    /**
     * @dev Committers outside the merge, by commit index: a rejected update (left out, and no
     * strict majority of a quorate epoch's reports found it valid) takes a strike, so a node
     * cannot keep committing forgeries at every validator's cost; an expired authorisation
     * gives up its seat (participants do both in `_settleOne`).
     */
    function _settleCommitters(uint256 epoch, EpochState storage e, Split memory split) private {
        uint256 left = ((uint256(1) << e.commitCount) - 1) & ~e.participants;
        while (left != 0) {
            uint256 index = Math.log2(left & (~left + 1));
            left &= left - 1;
            address node = _commits[epoch][index].node;
            Member storage m = _members[node];
            if ((split.rejected >> index) & 1 == 1) {
                emit UpdateRejected(epoch, node);
                split.forfeited += _strike(epoch, node, m, true);
            }
            if (m.status == Status.Active && _expired(m)) _release(node, m);
        }
    }

    /// @dev The value held by more than half of `values` (Boyer-Moore vote, then a count), or
    /// zero when none is.
    function _strictMajority(bytes32[] calldata values) private pure returns (bytes32 candidate) {
        uint256 lead = 0;
        for (uint256 r = 0; r < values.length; ++r) {
            if (lead == 0) {
                candidate = values[r];
                lead = 1;
            } else if (values[r] == candidate) {
                ++lead;
            } else {
                --lead;
            }
        }
        uint256 votes = 0;
        for (uint256 r = 0; r < values.length; ++r) {
            if (values[r] == candidate) ++votes;
        }
        if (2 * votes <= values.length) candidate = bytes32(0);
    }

    /// @dev What every participant's settlement shares (kept in memory to keep the stack small).
    struct Split {
        uint256 budget;
        uint256 positiveData; // D+: capped samples of the participants with a positive smoothed credit
        uint256 positiveScore; // S+: their smoothed credits (the paid set's S)
        uint256 totalWeight; // W: their data weights
        uint256 invalid; // bitmap over commit indices: participants no strict majority found valid
        uint256 rejected; // bitmap over commit indices: committers left out that no strict majority found valid
        uint256 forfeited; // balances forfeited by this epoch's suspensions
        bool quorate;
        Forfeit leaderFault;
    }

    /// @dev One participant in settlement.
    struct Outcome {
        uint256 index; // commit index
        address node;
        uint256 samples;
        int64 score; // the epoch's credit: the mean of the other reporters' votes
        int64 smoothed; // after the epoch
        bool evidence; // a quorate epoch with at least one other reporter: the smoothed credit moved
        uint256 weight; // data weight: the samples its evidence backs (0 unless paid)
    }

    /**
     * @dev Moves each participant's smoothed credit, gives each participant with a positive
     * one its data weight, and credits them by the reference rule; returns the total
     * credited. In an epoch that is not quorate nobody is paid, no smoothed credit moves and
     * nobody takes a strike. Participants that did not report, were skipped as leader, were
     * removed, led the epoch and were found at fault, were merged without a valid update, or
     * over-declared forfeit their payout to `carry`.
     */
    function _credit(uint256 epoch, EpochState storage e, int64[] memory scores, Split memory split)
        private
        returns (uint256 credited)
    {
        Outcome[] memory outcomes = _smoothScores(epoch, e, scores, split);
        uint256 standingBps = _config.standingBps;
        for (uint256 j = 0; j < outcomes.length; ++j) {
            Outcome memory o = outcomes[j];
            if (!split.quorate || o.smoothed <= 0) continue;
            // w = min(d, e * D+ * BPS / (standingBps * S+)): full weight at standingBps of the
            // average credit per sample, proportionally less below it. Cannot overflow:
            // smoothed <= 1e9, samples < 2^64, n <= 112.
            o.weight = standingBps == 0
                ? o.samples
                : Math.min(
                    o.samples,
                    uint256(uint64(o.smoothed)) * split.positiveData * _BPS / (standingBps * split.positiveScore)
                );
            split.totalWeight += o.weight;
        }
        for (uint256 j = 0; j < outcomes.length; ++j) {
            credited += _settleOne(epoch, e, outcomes[j], split);
        }
    }

    /**
     * @dev The participants in commit-index order, each with its smoothed credit moved (and
     * stored) when it has evidence: smoothed' = (smoothingBps * credit + (BPS - smoothingBps)
     * * smoothed) / BPS, truncated toward zero. Fills in D+ and S+.
     */
    function _smoothScores(uint256 epoch, EpochState storage e, int64[] memory scores, Split memory split)
        private
        returns (Outcome[] memory outcomes)
    {
        uint256[] memory indices = _bitIndices(e.participants, e.participantCount);
        outcomes = new Outcome[](indices.length);
        int256 weight = int256(uint256(_config.smoothingBps));
        uint256 reported = _popCount(e.reporters);
        for (uint256 j = 0; j < indices.length; ++j) {
            Commit memory c = _commits[epoch][indices[j]];
            Member storage m = _members[c.node];
            bool selfReported = e.reporters & (uint256(1) << indices[j]) != 0;
            bool evidence = split.quorate && reported > (selfReported ? 1 : 0);
            int64 smoothed = m.smoothedScore;
            if (evidence) {
                // A convex combination of values within [0, CREDIT_SCALE] stays within it.
                smoothed = int64((weight * scores[j] + (int256(_BPS) - weight) * smoothed) / int256(_BPS));
                m.smoothedScore = int48(smoothed);
            }
            outcomes[j] = Outcome(indices[j], c.node, c.samples, scores[j], smoothed, evidence, 0);
            if (smoothed > 0) {
                split.positiveData += c.samples;
                split.positiveScore += uint256(uint64(smoothed));
            }
        }
    }

    /// @dev One participant's credit (what `_credit` adds), strike, seat and event.
    function _settleOne(uint256 epoch, EpochState storage e, Outcome memory o, Split memory split)
        private
        returns (uint256 payout)
    {
        Member storage m = _members[o.node];
        Forfeit fault = o.index == e.leaderIndex ? split.leaderFault : Forfeit.None;
        bool invalid = (split.invalid >> o.index) & 1 == 1;
        Forfeit reason = _forfeitOf(e, o.index, m, fault);
        if (reason == Forfeit.None && invalid) reason = Forfeit.Invalid;
        if (reason == Forfeit.None && _commits[epoch][o.index].overDeclared) reason = Forfeit.OverDeclared;
        if (split.quorate && o.smoothed > 0 && reason == Forfeit.None) {
            payout = _payout(split.budget, o.weight, uint256(uint64(o.smoothed)), split.totalWeight, split.positiveScore);
            if (payout != 0) claimable[o.node] += payout;
        }
        if (split.quorate) {
            // A strike when its evidence backs under half of its samples (none: a smoothed
            // credit of 0), for an invalid update, or for a fault as leader. Low credit strikes
            // only when some participant holds credit (S+ > 0): an epoch in which the merged
            // model helped no validator singles nobody out, and must not strike the whole swarm.
            bool lowCredit = o.evidence && split.positiveScore != 0 && 2 * o.weight < o.samples;
            split.forfeited += _strike(epoch, o.node, m, lowCredit || fault != Forfeit.None || invalid);
        }
        if (m.status == Status.Active && _expired(m)) _release(o.node, m);
        bool standing = o.weight != 0 && o.weight == o.samples;
        emit ParticipantSettled(epoch, o.node, uint64(o.samples), o.score, o.smoothed, standing, payout, reason);
    }

    /**
     * @dev The reference reward rule (swarmtoken/rewards.py mirrors it to the wei). With
     * w_i the data weight, e_i > 0 the smoothed credit, W and S their sums over the paid set
     * (positive smoothed credit):
     *   payout_i = floor(budget * (beta * w_i * S + (1 - beta) * e_i * W) / (W * S))
     * which is floor(budget * (beta * w_i / W + (1 - beta) * e_i / S)). The numerators sum
     * to the denominator over the paid set and each payout is floored, so the payouts never
     * sum to more than the budget. W > 0 whenever the paid set is not empty: a participant
     * with at least the average credit per sample has full weight.
     */
    function _payout(uint256 budget, uint256 weight, uint256 score, uint256 totalWeight, uint256 totalScore)
        private
        view
        returns (uint256)
    {
        uint256 betaBps = _config.betaBps;
        uint256 numerator = betaBps * weight * totalScore + (_BPS - betaBps) * score * totalWeight;
        return Math.mulDiv(budget, numerator, _BPS * totalWeight * totalScore);
    }

    /// @dev Why a participant forfeits, if it does: removed, timed out as leader, at fault as
    /// leader, or did not report (in that order of precedence; an over-declaration comes last).
    function _forfeitOf(EpochState storage e, uint256 index, Member storage m, Forfeit leaderFault)
        private
        view
        returns (Forfeit)
    {
        uint256 bit = uint256(1) << index;
        if (m.status == Status.Removed) return Forfeit.Removed;
        if (e.skipped & bit != 0) return Forfeit.LeaderTimedOut;
        if (leaderFault != Forfeit.None) return leaderFault;
        if (e.reporters & bit == 0) return Forfeit.NotReported;
        return Forfeit.None;
    }

    /**
     * @dev A strike (see `_settleOne` and `_settleCommitters` for when) ends the run of clean
     * epochs; no strike resets the count and extends the run. At `suspendAfter` strikes the
     * member is suspended whatever its status (leaving does not dodge it) and forfeits its
     * unclaimed balance, which this returns; only the admin's `authorize` lifts a suspension.
     */
    function _strike(uint256 epoch, address node, Member storage m, bool struck) private returns (uint256 forfeited) {
        if (!struck) {
            if (m.strikes != 0) m.strikes = 0;
            if (m.cleanEpochs < type(uint8).max) m.cleanEpochs += 1;
            return 0;
        }
        m.cleanEpochs = 0;
        if (m.strikes < type(uint8).max) m.strikes += 1;
        uint8 limit = _config.suspendAfter;
        if (limit == 0 || m.strikes < limit) return 0;
        if (m.status == Status.Active) {
            activeCount -= 1;
        } else if (m.status != Status.None) {
            return 0; // already suspended or removed
        }
        m.status = Status.Suspended;
        emit NodeSuspended(node, epoch, m.strikes);
        forfeited = claimable[node];
        if (forfeited != 0) {
            claimable[node] = 0;
            emit BalanceForfeited(node, epoch, forfeited);
        }
    }

    /// @dev Updates best metric and patience counter; true when the swarm should stop. An
    /// improvement must exceed the best by more than minDelta (a flat metric is no progress).
    function _stoppingRuleFires(int64 metric, bool hasMetric) private returns (bool) {
        // int256: a hostile metric near type(int64).max must not make settlement overflow.
        if (hasMetric && (!_hasBest || int256(metric) > int256(bestMetric) + int256(_config.minDelta))) {
            _hasBest = true;
            bestMetric = metric;
            staleEpochs = 0;
        } else {
            staleEpochs += 1;
        }
        if (hasMetric && _config.targetMetric != 0 && metric >= _config.targetMetric) return true;
        if (settledEpochs >= _config.maxEpochs) return true;
        return _config.patience != 0 && staleEpochs >= _config.patience;
    }

    /**
     * @dev Two passes over the reports. The first rebuilds the hash chain (the reports are
     * the ones made on chain) and sums each report's positive scores for the others
     * (`_chainAndPositive`); the upper median of those sums, each at most VOTE_FLOOR, is the
     * most vote mass any report gives (`_vote`), so in an epoch of noise a liar's vote is no
     * larger than a typical honest one (upper: half the reports with nothing positive must
     * not zero the epoch). The second adds up every participant's votes. Then the metrics'
     * lower median is checked, and each participant's credit returned: its votes' total
     * over its other reporters. The caller checked the lengths. These passes
     * are the only part of settlement that grows with reports x participants, so their
     * inner loops are in assembly.
     */
    function _checkReports(uint256 epoch, EpochState storage e, Reports calldata reports, int64 metric)
        private
        view
        returns (int64[] memory scores)
    {
        uint256 n = e.participantCount;
        uint256 k = reports.reporters.length;
        uint256[] memory selves = new uint256[](k);
        uint256[] memory positives = new uint256[](k);
        uint256[] memory masses = new uint256[](k);
        uint256 selfReported = 0; // bitmap over participant positions whose node reported
        bytes32 digest = bytes32(0); // the chain starts from zero, as in reportValidation
        for (uint256 r = 0; r < k; ++r) {
            uint256 self = _participantPosition(epoch, e, reports.reporters[r]);
            if (self < n) selfReported |= uint256(1) << self;
            selves[r] = self;
            (digest, positives[r]) =
                _chainAndPositive(digest, _reportHead(reports, r), reports.scores[r * n * 8:(r + 1) * n * 8], self);
            masses[r] = Math.min(positives[r], VOTE_FLOOR);
        }
        if (digest != e.reportsDigest) revert ReportsMismatch(epoch);
        _checkMetricMedian(reports.metrics, metric);
        uint256 mass = k == 0 ? 0 : _upperMedian(masses);
        uint256[] memory votes = new uint256[](n);
        if (mass != 0) {
            for (uint256 r = 0; r < k; ++r) {
                _vote(reports.scores[r * n * 8:(r + 1) * n * 8], votes, selves[r], positives[r], mass);
            }
        }
        scores = new int64[](n);
        for (uint256 j = 0; j < n; ++j) {
            uint256 others = k - ((selfReported >> j) & 1);
            // At most CREDIT_SCALE: each vote gives at most CREDIT_SCALE (VOTE_CAP_BPS / (BPS * k)
            // of it once two or more participants are rated).
            if (others != 0) scores[j] = int64(uint64(votes[j] / others));
        }
    }

    /// @dev Element k / 2 of the k > 0 `values` sorted ascending; sorts them in place.
    /// Insertion sort: k is at most maxPeers, and settlement already reads k x n scores.
    function _upperMedian(uint256[] memory values) private pure returns (uint256) {
        uint256 k = values.length;
        for (uint256 i = 1; i < k; ++i) {
            uint256 value = values[i];
            uint256 j = i;
            for (; j > 0 && values[j - 1] > value; --j) {
                values[j] = values[j - 1];
            }
            values[j] = value;
        }
        return values[k / 2];
    }

    /// @dev `metric` must be the lower median (element (k - 1) / 2 sorted) of the k metrics, 0 for none.
    function _checkMetricMedian(int64[] calldata metrics, int64 metric) private pure {
        uint256 k = metrics.length;
        uint256 counts = 0;
        for (uint256 r = 0; r < k; ++r) {
            // Cannot overflow: each half counts at most k <= maxPeers.
            unchecked {
                counts += _tally(metrics[r], metric);
            }
        }
        uint256 middle = k == 0 ? 0 : (k - 1) / 2;
        bool ok = k == 0 ? metric == 0 : (counts & _LOW_HALF) <= middle && middle < counts >> 128;
        if (!ok) revert WrongMetricMedian(metric);
    }

    /// @dev The position among the participants of `reporter`'s update, or type(uint256).max
    /// when it is not a participant (a committer whose update was left out or invalid).
    function _participantPosition(uint256 epoch, EpochState storage e, address reporter)
        private
        view
        returns (uint256)
    {
        Member storage m = _members[reporter];
        // A forged reporter (not a committer of this epoch) fails the digest check anyway.
        if (m.lastSubmitEpoch != epoch) return type(uint256).max;
        uint256 index = m.commitIndex;
        if ((e.participants >> index) & 1 == 0) return type(uint256).max;
        return _popCount(e.participants & ((uint256(1) << index) - 1));
    }

    /// @dev Index of the first score outside [-SCORE_BOUND, SCORE_BOUND], or the length when
    /// all are in range. Reads the raw calldata words (a word that is not a clean int64 is out
    /// of range too): a report is checked once per reporter, so this loop is on every node's
    /// report and kept in assembly.
    function _firstOutOfRange(int64[] calldata scores) private pure returns (uint256 index) {
        int256 bound = SCORE_BOUND;
        assembly ("memory-safe") {
            let n := scores.length
            for {} lt(index, n) { index := add(index, 1) } {
                let value := calldataload(add(scores.offset, shl(5, index)))
                if or(sgt(value, bound), slt(value, sub(0, bound))) { break }
            }
        }
    }

    /// @dev The hash of report `r`'s fields other than its scores, as reportValidation chains it.
    function _reportHead(Reports calldata reports, uint256 r) private pure returns (bytes32) {
        return keccak256(abi.encode(reports.reporters[r], reports.metrics[r], reports.mergedHashes[r], reports.valids[r]));
    }

    /**
     * @dev For one report whose packed scores are `row` (8 bytes each, one per participant)
     * and `self` the reporter's own position (or out of range): return
     * keccak256(abi.encode(digest, head, scores)), the link reportValidation computed
     * (`head` hashes the report's other fields), and the sum of the report's positive scores
     * for participants other than `self`. The scores are unpacked into abi words in scratch
     * memory to be hashed. They were range-checked when reported, and the caller rejects a
     * row whose chain does not match.
     */
    function _chainAndPositive(bytes32 digest, bytes32 head, bytes calldata row, uint256 self)
        private
        pure
        returns (bytes32 next, uint256 positive)
    {
        assembly ("memory-safe") {
            // abi.encode(digest, head, scores) built past the free memory pointer, left
            // unallocated: three head words, the array length, the words.
            let ptr := mload(0x40)
            mstore(ptr, digest)
            mstore(add(ptr, 0x20), head)
            mstore(add(ptr, 0x40), 0x60) // offset of the array in the head
            mstore(add(ptr, 0x60), shr(3, row.length))
            let word := add(ptr, 0x80)
            let j := 0
            let end := add(row.offset, row.length)
            for { let p := row.offset } lt(p, end) { p := add(p, 8) } {
                let value := signextend(7, shr(192, calldataload(p)))
                mstore(word, value)
                if and(sgt(value, 0), iszero(eq(j, self))) { positive := add(positive, value) }
                word := add(word, 0x20)
                j := add(j, 1)
            }
            next := keccak256(ptr, sub(word, ptr))
        }
    }

    /**
     * @dev Add one report's vote to `votes`: to every participant j other than `self`,
     * min(floor(max(0, s_j) * CREDIT_SCALE * min(P, mass) / (P * VOTE_FLOOR)),
     * floor(VOTE_CAP_BPS * CREDIT_SCALE / (BPS * k))), where P (`positive`) is the sum of the report's
     * positive scores for participants other than `self`, k their number and `mass` the
     * epoch's upper median of min(P, VOTE_FLOOR) over the reports; nothing when P is 0. With
     * mass = VOTE_FLOOR this is s_j / max(P, VOTE_FLOOR) of a vote.
     */
    function _vote(bytes calldata row, uint256[] memory votes, uint256 self, uint256 positive, uint256 mass)
        private
        pure
    {
        if (positive == 0) return;
        uint256 rated = row.length / 8;
        if (self < rated) --rated;
        // rated > 0: some score other than `self`'s is positive.
        uint256 cap = VOTE_CAP_BPS * CREDIT_SCALE / (_BPS * rated);
        // Cannot overflow: scores are at most SCORE_BOUND, P at most maxPeers * SCORE_BOUND.
        uint256 numerator = CREDIT_SCALE * Math.min(positive, mass);
        uint256 denominator = positive * VOTE_FLOOR;
        assembly ("memory-safe") {
            let at := add(votes, 0x20)
            let i := 0
            let end := add(row.offset, row.length)
            for { let p := row.offset } lt(p, end) { p := add(p, 8) } {
                let value := signextend(7, shr(192, calldataload(p)))
                if and(sgt(value, 0), iszero(eq(i, self))) {
                    let slot := add(at, shl(5, i))
                    let vote := div(mul(value, numerator), denominator)
                    if gt(vote, cap) { vote := cap }
                    mstore(slot, add(mload(slot), vote))
                }
                i := add(i, 1)
            }
        }
    }

    /// @dev What one metric adds to its packed median-check counts.
    function _tally(int64 value, int64 hint) private pure returns (uint256) {
        if (value < hint) return _BELOW;
        return value == hint ? _AT : 0;
    }

    function _bitIndices(uint256 bitmap, uint256 count) private pure returns (uint256[] memory indices) {
        indices = new uint256[](count);
        uint256 j = 0;
        for (uint256 i = 0; j < count; ++i) {
            if (bitmap & (uint256(1) << i) != 0) indices[j++] = i;
        }
    }

    /// @dev Set bits of `x`, counted in parallel: pairs, nibbles, bytes, 16-bit lanes, then one
    /// multiply sums the lanes into the top 16 bits (at most 256 fits).
    function _popCount(uint256 x) private pure returns (uint256) {
        unchecked {
            x -= (x >> 1) & 0x5555555555555555555555555555555555555555555555555555555555555555;
            x = (x & 0x3333333333333333333333333333333333333333333333333333333333333333)
                + ((x >> 2) & 0x3333333333333333333333333333333333333333333333333333333333333333);
            x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f;
            x = (x + (x >> 8)) & 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff;
            return (x * 0x0001000100010001000100010001000100010001000100010001000100010001) >> 240;
        }
    }
}
