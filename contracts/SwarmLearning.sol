// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SwarmToken} from "./SwarmToken.sol";

/**
 * @title SwarmLearning
 * @notice Keeps a learning swarm's state (members, epoch, phase, leader, merge, validation
 * reports) and pays every participant in SwarmToken at the end of each epoch by measured
 * contribution: a `beta` share by (capped) data volume and a `1 - beta` share by the
 * median, across validators, of its Shapley-style score. Settled credits are minted to this
 * contract and pulled by their owners with `claim()`.
 *
 * Epoch protocol: Commit -> (elect) Merge -> (publish) Report -> (settle) next epoch's Commit,
 * or Finished when the stopping rule fires. Phases only move forward.
 *
 * Reports are not stored: each one is folded into a per-epoch hash chain and emitted in
 * `ValidationReported`. Settlement takes the reports back as calldata, in reporting order,
 * and checks them against the chain, so storage per report is O(1) and the event stream is
 * the complete contribution ledger. The settler also supplies each participant's lower
 * median as a hint, which the contract verifies by counting rather than sorting.
 *
 * @dev NOTE: threat assumptions.
 * - Leader election draws from the committed set with `block.prevrandao` of the election
 *   transaction, which no node knows while it can still commit. Residual surface: the
 *   account that calls `electLeader` chooses the block (it can wait for a favourable
 *   randomness value, one try per block), and a block proposer can withhold a block to
 *   re-roll. A leader gains little by being chosen: it is paid like any participant, it
 *   cannot choose the merge outcome (every node recomputes the deterministic merge and
 *   checks the published hash), and a leader that does not publish in time is skipped and
 *   forfeits its payout for the epoch.
 * - The leader chooses the participant set. It cannot add a node that did not commit, but it
 *   can leave committed nodes out; honest nodes detect that when they recompute the merge.
 * - Scores are aggregated by the lower median across reporters, so fewer than half of the
 *   reporters lying cannot move any participant's score outside the honest range.
 * - The owner (consortium admin) controls membership only. No role can move credited
 *   rewards: credits are only ever increased by settlement and decreased by their owner's
 *   claim.
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

    /// @notice Configuration fixed at deployment.
    struct Config {
        uint16 minPeers; // committed nodes needed before a leader can be elected
        uint16 maxPeers; // bound on active members, hence on every loop (<= 112)
        uint32 commitWindow; // seconds from epoch start before election is allowed
        uint32 mergeWindow; // seconds the leader has to publish the merge
        uint32 reportWindow; // seconds participants have to report validation
        uint16 betaBps; // data-volume share of the budget, in basis points
        uint8 suspendAfter; // consecutive non-positive median scores before suspension (0 = off)
        uint32 maxEpochs; // the swarm finishes after this many settled epochs
        uint32 patience; // epochs without an improvement of minDelta before finishing (0 = off)
        uint64 sampleCap; // per-node cap on the samples counted for the data share
        int64 targetMetric; // finish when the median validation metric reaches this (0 = off)
        int64 minDelta; // smallest metric gain that counts as an improvement
        uint256 rewardPerEpoch; // tokens (wei) minted per epoch, before carried dust
        bytes32 mergeRule; // merge rule id agreed at onboarding, e.g. "fltrust"
        bytes32 scorer; // contribution scorer id agreed at onboarding, e.g. "exact_shapley"
    }

    /// @notice A member's record.
    struct Member {
        bool allowListed;
        Status status;
        uint8 strikes; // consecutive settled epochs with a non-positive median score
        uint16 commitIndex; // index in the epoch's commits, valid when lastSubmitEpoch matches
        uint64 expiry; // authorisation ends at this timestamp (0 = never)
        uint64 lastSubmitEpoch; // last epoch this member committed in
    }

    /// @notice An accepted commitment. The parameter hash and uri live in `UpdateSubmitted`.
    struct Commit {
        address node;
        uint64 numSamples;
    }

    /// @notice Per-epoch state.
    struct EpochState {
        Phase phase;
        uint64 deadline; // end of the current phase's window
        uint16 commitCount;
        uint16 participantCount;
        uint16 reportCount;
        uint16 leaderIndex; // index into commits of the current leader
        uint16 failovers; // leaders skipped so far
        uint256 participants; // bitmap over commit indices, set by the leader
        uint256 reporters; // bitmap over commit indices of participants that reported
        uint256 skipped; // bitmap over commit indices of leaders that timed out
        bytes32 reportsDigest; // hash chain over reports in arrival order
        bytes32 mergedHash;
    }

    /**
     * @notice An epoch's validation reports, as emitted by `ValidationReported` and in that
     * order, re-supplied to settle: one reporter and metric per report, and every report's
     * score vector one after the other with each score in 8 bytes (big-endian two's
     * complement), so reports x participants x 8 bytes. Scores are packed because settlement
     * carries every score of the epoch, and calldata is its cost that grows fastest.
     */
    struct Reports {
        address[] reporters;
        int64[] metrics;
        bytes scores;
    }

    uint256 private constant _BPS = 10_000;
    uint256 private constant _BITMAP_BITS = 256; // participant and reporter bitmaps are one word
    /// @dev Settlement of a full epoch must fit in one transaction and one block, or the
    /// epoch's rewards could never be credited: it carries every score of every report
    /// (8 n^2 bytes) and counts each. Measured at 112 participants, all reporting, with
    /// gas-maximising scores: 111,460 bytes of calldata (clients refuse transactions over
    /// 131,072 bytes; 128 participants need 143,834) and 8.37M gas (a 12M-gas block).
    uint256 private constant _MAX_PEERS_LIMIT = 112;
    // Packed median-check counts: scores below the hint in the low half, at or below it in the high half.
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
    /// @notice An account was allow-listed (or had its authorisation renewed).
    event AccountAuthorized(address indexed account, uint64 expiry);
    /// @notice A member was removed by the owner; it forfeits unsettled payouts.
    event NodeRemoved(address indexed account);
    /// @notice An allow-listed account joined with the base URI of its parameter store.
    event NodeEnrolled(address indexed account, string baseUri);
    /// @notice A member left voluntarily.
    event NodeLeft(address indexed account);
    /// @notice A member was suspended after `strikes` consecutive non-positive scores.
    event NodeSuspended(address indexed account, uint256 indexed epoch, uint8 strikes);
    /// @notice A new epoch opened for commitments.
    event EpochOpened(uint256 indexed epoch, uint64 commitDeadline, uint256 budget);
    /// @notice A node committed its parameters for `epoch`.
    event UpdateSubmitted(
        uint256 indexed epoch, address indexed node, uint16 index, bytes32 paramHash, string uri, uint64 numSamples
    );
    /// @notice A leader was drawn; it must publish before `deadline`.
    event LeaderElected(uint256 indexed epoch, address indexed leader, uint256 seed, uint64 deadline);
    /// @notice The leader missed its deadline and the next candidate took over.
    event LeaderSkipped(uint256 indexed epoch, address indexed skipped, address indexed next, uint64 deadline);
    /// @notice The leader published the merged model over the participants bitmap.
    event MergePublished(
        uint256 indexed epoch, address indexed leader, bytes32 mergedHash, string uri, uint256 participants
    );
    /// @notice A participant reported its validation metric and one score per participant.
    event ValidationReported(uint256 indexed epoch, address indexed reporter, int64 metric, int64[] scores);
    /// @notice A participant's settled outcome; `forfeited` payouts went to `carry`.
    event ParticipantSettled(
        uint256 indexed epoch, address indexed node, uint64 samples, int64 medianScore, uint256 payout, bool forfeited
    );
    /// @notice An epoch was settled: `credited` minted to credits, `carried` to the next budget.
    event EpochSettled(
        uint256 indexed epoch, uint256 budget, uint256 credited, uint256 carried, int64 medianMetric, uint16 reporters
    );
    /// @notice Every candidate leader timed out; the budget is carried and the next epoch opens.
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
    /// @notice `account` is not on the allow-list.
    error NotAllowListed(address account);
    /// @notice `account`'s authorisation ended at `expiry` (now is `timestamp`).
    error AuthorizationExpired(address account, uint64 expiry, uint256 timestamp);
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
    /// @notice A commitment needs a non-zero parameter hash, a uri and samples.
    error InvalidSubmission(string reason);
    /// @notice Election is not allowed before the commit window closes at `closesAt`.
    error CommitWindowOpen(uint256 epoch, uint64 closesAt);
    /// @notice `committed` nodes committed, `minPeers` are needed.
    error NotEnoughCommits(uint256 epoch, uint16 committed, uint16 minPeers);
    /// @notice Only the current leader `leader` may publish.
    error NotLeader(address caller, address leader);
    /// @notice The merge window runs until `deadline`; fail-over must wait.
    error MergeWindowOpen(uint256 epoch, uint64 deadline);
    /// @notice The phase window ended at `deadline`.
    error DeadlinePassed(uint256 epoch, uint64 deadline);
    /// @notice The participants bitmap names commit index `index`, but only `committed` exist.
    error ParticipantNotCommitted(uint256 index, uint16 committed);
    /// @notice The merge names `count` participants, `minPeers` are needed.
    error TooFewParticipants(uint256 count, uint16 minPeers);
    /// @notice `account` is not a participant of `epoch`.
    error NotParticipant(address account, uint256 epoch);
    /// @notice `account` already reported in `epoch`.
    error AlreadyReported(address account, uint256 epoch);
    /// @notice The score vector has `given` entries, there are `expected` participants.
    error ScoreCountMismatch(uint256 given, uint256 expected);
    /// @notice Settlement needs all reports or the report deadline to pass.
    error SettlementNotDue(uint256 epoch, uint16 reported, uint16 participants, uint64 deadline);
    /// @notice `given` reports were supplied, `expected` were made.
    error ReportCountMismatch(uint256 given, uint256 expected);
    /// @notice The packed scores are `given` bytes long; reports x participants x 8 is `expected`.
    error PackedScoresLength(uint256 given, uint256 expected);
    /// @notice The supplied reports do not match the ones made on chain.
    error ReportsMismatch(uint256 epoch);
    /// @notice Hint `given` at `index` is not the lower median (index = participant count: the metric).
    error WrongMedian(uint256 index, int64 given);
    /// @notice `account` has no credited tokens.
    error NothingToClaim(address account);

    // ------------------------------------------------------------------ setup
    /**
     * @param config_ Swarm configuration; every field is checked.
     * @param token_ Reward token; this contract must be granted its MINTER_ROLE.
     * @param admin Consortium admin (owner): manages the allow-list.
     */
    constructor(Config memory config_, SwarmToken token_, address admin) Ownable(admin) {
        if (address(token_) == address(0)) revert ZeroAddress("token");
        _checkConfig(config_);
        _config = config_;
        token = token_;
        _openEpoch(1, 0);
    }

    function _checkConfig(Config memory c) private pure {
        if (c.maxPeers == 0 || c.maxPeers > _MAX_PEERS_LIMIT) revert InvalidConfig("maxPeers", c.maxPeers);
        if (c.minPeers == 0 || c.minPeers > c.maxPeers) revert InvalidConfig("minPeers", c.minPeers);
        if (c.commitWindow == 0) revert InvalidConfig("commitWindow", 0);
        if (c.mergeWindow == 0) revert InvalidConfig("mergeWindow", 0);
        if (c.reportWindow == 0) revert InvalidConfig("reportWindow", 0);
        if (c.betaBps > _BPS) revert InvalidConfig("betaBps", c.betaBps);
        if (c.sampleCap == 0) revert InvalidConfig("sampleCap", 0);
        if (c.maxEpochs == 0) revert InvalidConfig("maxEpochs", 0);
        if (c.targetMetric < 0) revert InvalidConfig("targetMetric", uint256(uint64(-c.targetMetric)));
        if (c.minDelta < 0) revert InvalidConfig("minDelta", uint256(uint64(-c.minDelta)));
        if (c.rewardPerEpoch == 0) revert InvalidConfig("rewardPerEpoch", 0);
        if (c.mergeRule == bytes32(0)) revert InvalidConfig("mergeRule", 0);
        if (c.scorer == bytes32(0)) revert InvalidConfig("scorer", 0);
    }

    // ------------------------------------------------------------------ membership
    /**
     * @notice Allow-list `account` until `expiry` (0 = no expiry). Also lifts a suspension or
     * removal; the account then enrols again.
     */
    function authorize(address account, uint64 expiry) external onlyOwner {
        if (account == address(0)) revert ZeroAddress("account");
        Member storage m = _members[account];
        m.allowListed = true;
        m.expiry = expiry;
        if (m.status == Status.Suspended || m.status == Status.Removed) {
            m.status = Status.None;
            m.strikes = 0;
        }
        emit AccountAuthorized(account, expiry);
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

    /// @notice Leave the swarm. Credits stay claimable; a pending commitment stays valid.
    function leave() external {
        Member storage m = _members[msg.sender];
        if (m.status != Status.Active) revert NotActive(msg.sender, m.status);
        activeCount -= 1;
        m.status = Status.None;
        emit NodeLeft(msg.sender);
    }

    // ------------------------------------------------------------------ epoch protocol
    /**
     * @notice Commit this node's parameters for `epoch`: the sha256 `paramHash` of the file it
     * will serve at `uri` once the commit phase is over, trained on `numSamples` samples.
     * @dev Accepted for as long as the epoch is in the Commit phase, so a swarm short of
     * `minPeers` keeps waiting for late nodes instead of stalling.
     */
    function submitUpdate(uint256 epoch, bytes32 paramHash, string calldata uri, uint64 numSamples) external {
        EpochState storage e = _openEpochState(epoch, Phase.Commit);
        Member storage m = _members[msg.sender];
        if (m.status != Status.Active) revert NotActive(msg.sender, m.status);
        _checkAuthorized(msg.sender, m);
        if (m.lastSubmitEpoch == epoch) revert AlreadySubmitted(msg.sender, epoch);
        if (paramHash == bytes32(0)) revert InvalidSubmission("zero paramHash");
        if (bytes(uri).length == 0) revert InvalidSubmission("empty uri");
        if (numSamples == 0) revert InvalidSubmission("zero numSamples");
        uint16 index = e.commitCount;
        // Members can leave and others enrol mid-epoch, so bound the commitments themselves:
        // every bitmap over commit indices must fit in one word.
        if (index >= _config.maxPeers) revert MaxPeersReached(_config.maxPeers);
        e.commitCount = index + 1;
        m.lastSubmitEpoch = uint64(epoch);
        m.commitIndex = index;
        _commits[epoch][index] = Commit(msg.sender, numSamples);
        emit UpdateSubmitted(epoch, msg.sender, index, paramHash, uri, numSamples);
    }

    /// @notice Close the commit phase and draw the leader. Anyone may call.
    function electLeader(uint256 epoch) external {
        EpochState storage e = _openEpochState(epoch, Phase.Commit);
        if (block.timestamp <= e.deadline) revert CommitWindowOpen(epoch, e.deadline);
        if (e.commitCount < _config.minPeers) revert NotEnoughCommits(epoch, e.commitCount, _config.minPeers);
        uint256 seed = uint256(keccak256(abi.encode(block.prevrandao, epoch, e.commitCount, address(this))));
        uint16 leaderIndex = uint16(seed % e.commitCount);
        uint64 deadline = uint64(block.timestamp) + _config.mergeWindow;
        e.phase = Phase.Merge;
        e.leaderIndex = leaderIndex;
        e.deadline = deadline;
        emit LeaderElected(epoch, _commits[epoch][leaderIndex].node, seed, deadline);
    }

    /**
     * @notice After the leader's deadline, or at once if the owner removed the leader, hand
     * leadership to the next committed node. The skipped leader forfeits its payout this
     * epoch. When every committed node has been skipped the epoch is abandoned and its
     * budget carried. Anyone may call.
     */
    function failover(uint256 epoch) external {
        EpochState storage e = _openEpochState(epoch, Phase.Merge);
        address skipped = _commits[epoch][e.leaderIndex].node;
        if (block.timestamp <= e.deadline && _members[skipped].status != Status.Removed) {
            revert MergeWindowOpen(epoch, e.deadline);
        }
        e.skipped |= (uint256(1) << e.leaderIndex);
        e.failovers += 1;
        if (e.failovers == e.commitCount) {
            e.phase = Phase.Abandoned;
            uint256 budget = _budget();
            carry = budget;
            emit LeaderSkipped(epoch, skipped, address(0), 0);
            emit EpochAbandoned(epoch, budget);
            _openEpoch(epoch + 1, 0);
            return;
        }
        uint16 next = uint16((uint256(e.leaderIndex) + 1) % e.commitCount);
        uint64 deadline = uint64(block.timestamp) + _config.mergeWindow;
        e.leaderIndex = next;
        e.deadline = deadline;
        emit LeaderSkipped(epoch, skipped, _commits[epoch][next].node, deadline);
    }

    /**
     * @notice The leader publishes the merged model: its sha256 `mergedHash`, where to fetch
     * it, and the bitmap over commit indices of the updates it merged.
     */
    function publishMerge(uint256 epoch, bytes32 mergedHash, string calldata uri, uint256 participants) external {
        EpochState storage e = _openEpochState(epoch, Phase.Merge);
        address leader = _commits[epoch][e.leaderIndex].node;
        if (msg.sender != leader) revert NotLeader(msg.sender, leader);
        if (_members[leader].status == Status.Removed) revert NotActive(leader, Status.Removed);
        if (block.timestamp > e.deadline) revert DeadlinePassed(epoch, e.deadline);
        if (mergedHash == bytes32(0)) revert InvalidSubmission("zero mergedHash");
        if (bytes(uri).length == 0) revert InvalidSubmission("empty uri");
        uint16 committed = e.commitCount;
        if (committed < _BITMAP_BITS && participants >> committed != 0) {
            revert ParticipantNotCommitted(Math.log2(participants), committed);
        }
        uint256 count = _popCount(participants);
        if (count < _config.minPeers) revert TooFewParticipants(count, _config.minPeers);
        uint64 deadline = uint64(block.timestamp) + _config.reportWindow;
        e.phase = Phase.Report;
        e.participants = participants;
        e.participantCount = uint16(count);
        e.mergedHash = mergedHash;
        e.deadline = deadline;
        emit MergePublished(epoch, leader, mergedHash, uri, participants);
    }

    /**
     * @notice A participant reports the merged model's metric on its validation data and its
     * score for every participant, in ascending commit-index order (fixed-point integers).
     */
    function reportValidation(uint256 epoch, int64 metric, int64[] calldata scores) external {
        EpochState storage e = _openEpochState(epoch, Phase.Report);
        if (block.timestamp > e.deadline) revert DeadlinePassed(epoch, e.deadline);
        Member storage m = _members[msg.sender];
        if (m.status == Status.Removed) revert NotActive(msg.sender, Status.Removed);
        uint256 bit = uint256(1) << m.commitIndex;
        if (m.lastSubmitEpoch != epoch || e.participants & bit == 0) revert NotParticipant(msg.sender, epoch);
        if (e.reporters & bit != 0) revert AlreadyReported(msg.sender, epoch);
        if (scores.length != e.participantCount) revert ScoreCountMismatch(scores.length, e.participantCount);
        e.reporters |= bit;
        e.reportCount += 1;
        e.reportsDigest = keccak256(abi.encode(e.reportsDigest, msg.sender, metric, scores));
        emit ValidationReported(epoch, msg.sender, metric, scores);
    }

    /**
     * @notice Settle `epoch` from its `reports` (see `Reports`: as emitted, in order), with the
     * lower median of each participant's scores and of the metrics as hints. The contract
     * verifies the hints instead of sorting: m is the lower median of k values exactly when
     * #{v < m} <= (k - 1) / 2 < #{v <= m}, one counting pass over the reports. With no
     * reports every hint must be 0. Then payouts by the reference rule, credits, stopping
     * rule. Anyone may call once every participant reported or the report deadline passed.
     */
    function settle(uint256 epoch, Reports calldata reports, int64[] calldata medians, int64 metric) external {
        EpochState storage e = _openEpochState(epoch, Phase.Report);
        if (e.reportCount < e.participantCount && block.timestamp <= e.deadline) {
            revert SettlementNotDue(epoch, e.reportCount, e.participantCount, e.deadline);
        }
        uint256 k = reports.reporters.length;
        if (k != e.reportCount) revert ReportCountMismatch(k, e.reportCount);
        if (reports.metrics.length != k) revert ReportCountMismatch(reports.metrics.length, k);
        if (medians.length != e.participantCount) revert ScoreCountMismatch(medians.length, e.participantCount);
        if (reports.scores.length != k * medians.length * 8) {
            revert PackedScoresLength(reports.scores.length, k * medians.length * 8);
        }
        _checkReports(epoch, e.reportsDigest, reports, medians, metric);
        e.phase = Phase.Settled;
        settledEpochs += 1;

        uint256[] memory indices = _bitIndices(e.participants, e.participantCount);
        uint256 budget = _budget();
        bool anyReports = k != 0;
        uint256 credited = _credit(epoch, e, indices, medians, budget, anyReports);
        carry = budget - credited;
        emit EpochSettled(epoch, budget, credited, budget - credited, metric, uint16(k));

        if (_stoppingRuleFires(metric, anyReports)) {
            finished = true;
            emit SwarmFinished(epoch, bestMetric);
        } else {
            _openEpoch(epoch + 1, credited);
        }
        // Last, after every state change: the only external call of settlement.
        if (credited != 0) token.mint(address(this), credited);
    }

    /// @notice Transfer all of the caller's credited tokens to it.
    function claim() external {
        uint256 amount = claimable[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        claimable[msg.sender] = 0;
        emit RewardClaimed(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ views
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

    /// @notice Current leader of `epoch` (meaningful from the Merge phase on).
    function leaderOf(uint256 epoch) external view returns (address) {
        return _commits[epoch][_epochs[epoch].leaderIndex].node;
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
        if (m.expiry != 0 && block.timestamp >= m.expiry) {
            revert AuthorizationExpired(account, m.expiry, block.timestamp);
        }
    }

    function _openEpochState(uint256 epoch, Phase expected) private view returns (EpochState storage e) {
        if (finished) revert SwarmIsFinished();
        if (epoch != currentEpoch) revert WrongEpoch(epoch, currentEpoch);
        e = _epochs[epoch];
        if (e.phase != expected) revert WrongPhase(epoch, e.phase, expected);
    }

    /// @dev `pendingMint`: credits of the epoch just settled, minted after this call, which
    /// the announced budget must already leave out of the token's mintable supply.
    function _openEpoch(uint256 epoch, uint256 pendingMint) private {
        currentEpoch = uint64(epoch);
        uint64 deadline = uint64(block.timestamp) + _config.commitWindow;
        _epochs[epoch].deadline = deadline;
        emit EpochOpened(epoch, deadline, _budgetAfter(pendingMint));
    }

    /// @dev This epoch's budget: the reward plus carried dust, limited by the token cap.
    function _budget() private view returns (uint256) {
        return _budgetAfter(0);
    }

    /// @dev The budget once `pendingMint` more tokens exist. Cannot underflow: a pending mint
    /// never exceeds the budget it was credited from, which never exceeds mintable().
    function _budgetAfter(uint256 pendingMint) private view returns (uint256) {
        return Math.min(_config.rewardPerEpoch + carry, token.mintable() - pendingMint);
    }

    /**
     * @dev Credits each participant by the reference rule and returns the total credited.
     * Participants that did not report, were skipped as leader or were removed forfeit
     * their payout to `carry`.
     */
    function _credit(
        uint256 epoch,
        EpochState storage e,
        uint256[] memory indices,
        int64[] memory medians,
        uint256 budget,
        bool anyReports
    ) private returns (uint256 credited) {
        (address[] memory nodes, uint256[] memory samples, uint256 totalData, uint256 totalScore) =
            _paidTotals(epoch, indices, medians);
        for (uint256 j = 0; j < indices.length; ++j) {
            uint256 payout = medians[j] > 0
                ? _payout(budget, samples[j], uint256(uint64(medians[j])), totalData, totalScore)
                : 0;
            Member storage m = _members[nodes[j]];
            bool forfeited = payout != 0 && _forfeits(e, indices[j], m);
            if (payout != 0 && !forfeited) {
                claimable[nodes[j]] += payout;
                credited += payout;
            }
            if (anyReports) _strike(epoch, nodes[j], m, medians[j]);
            emit ParticipantSettled(epoch, nodes[j], uint64(samples[j]), medians[j], forfeited ? 0 : payout, forfeited);
        }
    }

    /// @dev Participants' nodes and capped samples, and the sums D and S over the paid set
    /// (participants whose median score is positive).
    function _paidTotals(uint256 epoch, uint256[] memory indices, int64[] memory medians)
        private
        view
        returns (address[] memory nodes, uint256[] memory samples, uint256 totalData, uint256 totalScore)
    {
        uint256 n = indices.length;
        nodes = new address[](n);
        samples = new uint256[](n);
        for (uint256 j = 0; j < n; ++j) {
            Commit memory c = _commits[epoch][indices[j]];
            nodes[j] = c.node;
            samples[j] = Math.min(c.numSamples, _config.sampleCap);
            if (medians[j] > 0) {
                totalData += samples[j];
                totalScore += uint256(uint64(medians[j]));
            }
        }
    }

    /**
     * @dev The reference reward rule (swarmtoken/rewards.py mirrors it to the wei). With
     * d_i the capped samples, s_i > 0 the median score, D and S their sums over the paid set:
     *   payout_i = floor(budget * (beta * d_i * S + (1 - beta) * s_i * D) / (D * S))
     * which is floor(budget * (beta * d_i / D + (1 - beta) * s_i / S)). The numerators sum
     * to the denominator over the paid set and each payout is floored, so the payouts never
     * sum to more than the budget.
     */
    function _payout(uint256 budget, uint256 samples, uint256 score, uint256 totalData, uint256 totalScore)
        private
        view
        returns (uint256)
    {
        uint256 betaBps = _config.betaBps;
        uint256 numerator = betaBps * samples * totalScore + (_BPS - betaBps) * score * totalData;
        return Math.mulDiv(budget, numerator, _BPS * totalData * totalScore);
    }

    /// @dev A participant forfeits when it did not report, timed out as leader or was removed.
    function _forfeits(EpochState storage e, uint256 index, Member storage m) private view returns (bool) {
        uint256 bit = uint256(1) << index;
        return e.reporters & bit == 0 || e.skipped & bit != 0 || m.status == Status.Removed;
    }

    /// @dev Counts consecutive non-positive scores and suspends at `suspendAfter`.
    function _strike(uint256 epoch, address node, Member storage m, int64 median) private {
        if (median > 0) {
            if (m.strikes != 0) m.strikes = 0;
            return;
        }
        if (m.strikes < type(uint8).max) m.strikes += 1;
        uint8 limit = _config.suspendAfter;
        if (limit != 0 && m.strikes >= limit && m.status == Status.Active) {
            m.status = Status.Suspended;
            activeCount -= 1;
            emit NodeSuspended(node, epoch, m.strikes);
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
     * @dev One pass over the reports: rebuild the hash chain (the reports are the ones made
     * on chain) and count, per participant, the scores below and at-or-below its median
     * hint; then check every hint is the lower median (element (k - 1) / 2 in sorted order).
     * The caller checked the lengths. This pass is the only part of settlement that grows
     * with reports x participants, so its inner loop (`_chainAndCount`) is in assembly.
     */
    function _checkReports(
        uint256 epoch,
        bytes32 expectedDigest,
        Reports calldata reports,
        int64[] calldata medians,
        int64 metric
    ) private pure {
        uint256 n = medians.length;
        int64[] memory hints = new int64[](n);
        for (uint256 j = 0; j < n; ++j) {
            hints[j] = medians[j];
        }
        uint256[] memory counts = new uint256[](n);
        uint256 metricCounts = 0;
        bytes32 digest = bytes32(0); // the chain starts from zero, as in reportValidation
        uint256 k = reports.reporters.length;
        for (uint256 r = 0; r < k; ++r) {
            bytes calldata row = reports.scores[r * n * 8:(r + 1) * n * 8];
            digest = _chainAndCount(digest, reports.reporters[r], reports.metrics[r], row, counts, hints);
            // Cannot overflow: each half counts at most k <= maxPeers.
            unchecked {
                metricCounts += _tally(reports.metrics[r], metric);
            }
        }
        if (digest != expectedDigest) revert ReportsMismatch(epoch);
        for (uint256 j = 0; j <= n; ++j) {
            (uint256 packed, int64 hint) = j < n ? (counts[j], hints[j]) : (metricCounts, metric);
            uint256 below = packed & _LOW_HALF;
            uint256 atOrBelow = packed >> 128;
            bool ok = k == 0 ? hint == 0 : below <= (k - 1) / 2 && (k - 1) / 2 < atOrBelow;
            if (!ok) revert WrongMedian(j, hint);
        }
    }

    /**
     * @dev For one report whose packed scores are `row` (8 bytes each, as many as `counts`
     * and `hints` have entries): add _tally(score_j, hints[j]) to counts[j] for every j, and
     * return keccak256(abi.encode(digest, reporter, metric, scores)), the link
     * reportValidation computed, by unpacking the scores into abi words in scratch memory.
     */
    function _chainAndCount(
        bytes32 digest,
        address reporter,
        int64 metric,
        bytes calldata row,
        uint256[] memory counts,
        int64[] memory hints
    ) private pure returns (bytes32 next) {
        assembly ("memory-safe") {
            // abi.encode(digest, reporter, metric, scores) built past the free memory
            // pointer, left unallocated: four head words, the array length, the words.
            let ptr := mload(0x40)
            mstore(ptr, digest)
            mstore(add(ptr, 0x20), reporter)
            mstore(add(ptr, 0x40), metric)
            mstore(add(ptr, 0x60), 0x80) // offset of the array in the head
            mstore(add(ptr, 0x80), shr(3, row.length))
            let word := add(ptr, 0xa0)
            let countAt := add(counts, 0x20)
            let hintAt := add(hints, 0x20)
            let end := add(row.offset, row.length)
            for { let at := row.offset } lt(at, end) { at := add(at, 8) } {
                let value := signextend(7, shr(192, calldataload(at)))
                mstore(word, value)
                let hint := mload(hintAt)
                // below: +1 in the low half; at or below: +1 in the high half (_BELOW / _AT)
                mstore(countAt, add(mload(countAt), add(slt(value, hint), shl(128, iszero(sgt(value, hint))))))
                word := add(word, 0x20)
                countAt := add(countAt, 0x20)
                hintAt := add(hintAt, 0x20)
            }
            next := keccak256(ptr, sub(word, ptr))
        }
    }

    /// @dev What one value adds to its packed counts (see _chainAndCount).
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

    function _popCount(uint256 bitmap) private pure returns (uint256 count) {
        while (bitmap != 0) {
            bitmap &= bitmap - 1;
            ++count;
        }
    }
}
